/**
 * Leader/follower group commit: an append to an idle log is fsynced at once (no timer), appends
 * that arrive while a commit is in flight share the next one, and fsyncs stay within
 * buffer.maxFsyncsPerSecond.
 */
import { describe, expect, it } from 'vitest';
import { tempDir } from '../test/helpers/peers.js';
import { openRingLog, type RingLog } from './index.js';
import type { RingLogConfig } from './schema.js';
import { bufferSchema } from './schema.js';
import { cleanupsAfterEach } from '../test/helpers/cleanups.js';

const cleanups = cleanupsAfterEach();

async function open(over: Partial<RingLogConfig>): Promise<RingLog> {
  const d = tempDir('sluice-group-');
  cleanups.push(d.cleanup);
  const log = await openRingLog({ dir: d.path, gatewayId: 'g', config: { ...bufferSchema.parse({ diskReserve: 0 }), ...over } });
  cleanups.push(() => log.close());
  return log;
}

const ev = (i: number) => [{ source: 's', topic: 't', payload: i }];

describe('group commit', () => {
  it('an append to an idle log does not wait for the fsync bound; the next one within the bound does', async () => {
    const log = await open({ maxFsyncsPerSecond: 2 });
    await new Promise((r) => setTimeout(r, 600));
    let t = performance.now();
    await log.append(ev(1));
    const first = performance.now() - t;
    t = performance.now();
    await log.append(ev(2));
    const second = performance.now() - t;
    // the first: one fsync, no timer; the second waits out the 500 ms gap
    expect(first).toBeLessThan(250);
    expect(second).toBeGreaterThan(400);
    expect(log.stats().fsyncs).toBe(2);
  });

  it('appends arriving while a commit is in flight share the next one, and fsyncs stay within the bound', async () => {
    const log = await open({ maxFsyncsPerSecond: 40 });
    const started = performance.now();
    let appended = 0;
    // 50 producers, each waiting for its own append before the next (a QoS 1 sensor with window 1)
    await Promise.all(
      Array.from({ length: 50 }, async (_, c) => {
        while (performance.now() - started < 1000) {
          await log.append(ev(c));
          appended++;
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const s = log.stats();
    expect(s.lastSeq).toBe(appended);
    expect(s.fsyncs!).toBeLessThanOrEqual(Math.ceil(40 * seconds) + 1);
    // every fsync carried many producers' events
    expect(appended / s.fsyncs!).toBeGreaterThan(10);
  });

  it('with no bound (the default), the next commit starts as soon as the previous one is durable', async () => {
    const log = await open({});
    const t = performance.now();
    for (let i = 0; i < 20; i++) await log.append(ev(i));
    // twenty fsyncs one after another: no gap timer between them (with a bound of 2 a second this takes 10 s)
    expect(performance.now() - t).toBeLessThan(2000);
    expect(log.stats().fsyncs).toBe(20);
  });

  it('commitInterval, the older setting, still validates and reads as the least time between fsyncs', () => {
    expect(bufferSchema.parse({ commitInterval: '5ms' }).maxFsyncsPerSecond).toBe(200);
    expect(bufferSchema.parse({ commitInterval: '5ms', maxFsyncsPerSecond: 50 }).maxFsyncsPerSecond).toBe(50);
    expect(bufferSchema.parse({}).maxFsyncsPerSecond).toBeUndefined();
  });
});
