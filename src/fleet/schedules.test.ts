import { afterEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../core/log.js';
import { Scheduler } from './schedules.js';
import type { ScheduleConfig } from './schema.js';

afterEach(() => {
  vi.useRealTimers();
});

const every = (cron: string): ScheduleConfig => ({ name: 'job', cron, action: 'state' });

describe('Scheduler', () => {
  it('runs on its cron slots', async () => {
    vi.useFakeTimers({ now: new Date('2026-06-01T12:00:00.500Z') });
    const runs: number[] = [];
    const s = new Scheduler(async () => void runs.push(Date.now()), silentLogger);
    s.set([every('*/10 * * * * *')]);
    await vi.advanceTimersByTimeAsync(35_000);
    s.stop();
    expect(runs.map((t) => new Date(t).toISOString())).toEqual([
      '2026-06-01T12:00:10.000Z',
      '2026-06-01T12:00:20.000Z',
      '2026-06-01T12:00:30.000Z',
    ]);
  });

  it('does not fire a burst of missed runs when the clock jumps decades forward (NTP on a Pi booted in 1970)', async () => {
    vi.useFakeTimers({ now: new Date('1970-01-01T00:00:30.000Z') });
    const runs: number[] = [];
    const s = new Scheduler(async () => void runs.push(Date.now()), silentLogger);
    s.set([every('* * * * * *')]);
    await vi.advanceTimersByTimeAsync(3_000);
    expect(runs).toHaveLength(3);
    const t0 = performance.now();
    vi.setSystemTime(new Date('2026-06-01T12:00:00.000Z'));
    await vi.advanceTimersByTimeAsync(2_500);
    const status = s.status()[0];
    s.stop();
    // One skipped slot for the jump, then it carries on from the new time: no run per missed second.
    expect(status.skipped).toBe(1);
    expect(runs.length).toBeLessThanOrEqual(3 + 3);
    expect(new Date(runs[runs.length - 1]).getUTCFullYear()).toBe(2026);
    expect(performance.now() - t0).toBeLessThan(5_000);
  });

  it('re-plans when the clock moves back', async () => {
    vi.useFakeTimers({ now: new Date('2026-06-01T12:00:00.000Z') });
    const runs: number[] = [];
    const s = new Scheduler(async () => void runs.push(Date.now()), silentLogger);
    s.set([every('0 * * * * *')]);
    vi.setSystemTime(new Date('2026-06-01T10:00:30.000Z'));
    await vi.advanceTimersByTimeAsync(95_000);
    s.stop();
    expect(runs.map((t) => new Date(t).toISOString())).toEqual([
      '2026-06-01T10:01:00.000Z',
      '2026-06-01T10:02:00.000Z',
    ]);
  });

  it('reads the expression in the schedule time zone', () => {
    vi.useFakeTimers({ now: new Date('2026-06-01T00:00:00.000Z') });
    const s = new Scheduler(async () => {}, silentLogger);
    s.set([{ name: 'noon-tokyo', cron: '0 0 12 * * *', timezone: 'Asia/Tokyo', action: 'state' }]);
    expect(s.status()[0].nextRun).toBe('2026-06-01T03:00:00.000Z');
    s.stop();
  });

  it('counts a failed run and keeps going', async () => {
    vi.useFakeTimers({ now: new Date('2026-06-01T12:00:00.500Z') });
    let n = 0;
    const s = new Scheduler(async () => {
      n++;
      throw new Error('boom');
    }, silentLogger);
    s.set([every('* * * * * *')]);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(s.status()[0]).toMatchObject({ failures: 2, lastError: 'boom' });
    s.stop();
    expect(n).toBe(2);
  });
});

describe('schedule actions', () => {
  it('accepts the obsolete `retention` (existing configs keep loading) and refuses unknown actions', async () => {
    const { scheduleSchema } = await import('./schema.js');
    expect(scheduleSchema.safeParse({ name: 'sweep', cron: '30 3 * * *', action: 'retention' }).success).toBe(true);
    expect(scheduleSchema.safeParse({ name: 'sweep', cron: '30 3 * * *', action: 'retention', body: {} }).success).toBe(false);
    const r = scheduleSchema.safeParse({ name: 'x', cron: '* * * * *', action: 'defrag' });
    expect(r.error?.issues[0].message).toMatch(/^must be one of "state", "status", /);
  });
});
