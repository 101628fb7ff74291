import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { mqttUplinkSchema } from './mqtt/schema.js';
import { allAccepted, type Batch, type SendResult, type Sink } from './sink.js';
import { memoryRunner } from '../test/helpers/uplink/memory-runner.js';
import { until } from '../test/helpers/until.js';

/** A sink scripted by the test: the runner's peer here is the Sink contract itself, not a protocol. */
class ScriptedSink implements Sink {
  batches: Batch[] = [];
  connected = true;
  constructor(private readonly reply: (batch: Batch, n: number) => SendResult | Promise<SendResult> = allAccepted) {}
  async start() {}
  async stop() {}
  health() {
    return { connected: this.connected };
  }
  async send(batch: Batch) {
    this.batches.push(batch);
    return this.reply(batch, this.batches.length);
  }
  seqs(accepted = true): number[] {
    return this.batches.flatMap((b) => b.events.map((e) => e.seq)).filter(() => accepted);
  }
}

function config(extra: Record<string, unknown> = {}) {
  return mqttUplinkSchema.parse({
    name: 'cloud',
    type: 'mqtt',
    url: 'mqtt://127.0.0.1:1',
    retry: { initialDelay: 10, maxDelay: 50 },
    batch: { maxDelay: 0 },
    ...extra,
  });
}

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

function setup(sink: Sink, extra: Record<string, unknown> = {}) {
  const run = memoryRunner(config(extra), () => sink, { gatewayId: 'gw-t', stopMs: 1000 });
  stops.push(run.stop);
  return run;
}

describe('UplinkRunner', () => {
  it('delivers every event once, in order, in contract batches, and commits the cursor', async () => {
    const sink = new ScriptedSink();
    const { log, reader, registry, runner } = setup(sink, { batch: { maxEvents: 100, maxDelay: 0 } });
    log.appendN(250);
    runner.start();
    await until(() => reader.committed === 250);
    expect(sink.seqs()).toEqual(Array.from({ length: 250 }, (_, i) => i + 1));
    expect(sink.batches.every((b) => b.events.length <= 100)).toBe(true);
    expect(sink.batches[0].batchId).toBe(`1-${sink.batches[0].events.length}`);
    expect(sink.batches[0].gateway).toBe('gw-t');
    // live events after the backlog
    log.appendN(5);
    await until(() => reader.committed === 255);
    const s = runner.status();
    expect(s).toMatchObject({ name: 'cloud', type: 'mqtt', connected: true, deliveredEvents: 255, pendingEvents: 0 });
    expect(s.lagSeconds).toBe(0);
    const metrics = await registry.metrics();
    expect(metrics).toContain('sluice_uplink_delivered_events_total{uplink="cloud"} 255');
    expect(metrics).toContain('sluice_uplink_pending_events{uplink="cloud"} 0');
    expect(metrics).toContain('sluice_uplink_connected{uplink="cloud"} 1');
  });

  it('fills a partial batch for up to batch.maxDelay', async () => {
    const sink = new ScriptedSink();
    const { log, reader, runner } = setup(sink, { batch: { maxEvents: 50, maxDelay: 2000 } });
    runner.start();
    for (let i = 0; i < 10; i++) {
      log.appendN(5);
      await new Promise((r) => setTimeout(r, 10));
    }
    await until(() => reader.committed === 50);
    // 50 events arrived over ~100 ms, well inside the 2 s age limit: one full batch.
    expect(sink.batches.map((b) => b.events.length)).toEqual([50]);
  });

  it('retries a failing send with backoff, keeps the error on status, and loses nothing', async () => {
    const sink = new ScriptedSink((b, n) => {
      if (n <= 3) throw new Error('connection reset by peer');
      return allAccepted(b);
    });
    const { log, reader, registry, runner } = setup(sink);
    log.appendN(20);
    runner.start();
    await until(() => reader.committed === 20);
    const s = runner.status();
    expect(s.retried).toBe(3);
    expect(s.lastError).toContain('connection reset by peer');
    expect(s.deliveredEvents).toBe(20);
    // every attempt resent the same events, and the cursor never moved before the ack
    expect(sink.batches.slice(0, 4).map((b) => b.batchId)).toEqual(['1-20', '1-20', '1-20', '1-20']);
    expect(reader.commits).toEqual([20]);
    expect(await registry.metrics()).toContain('sluice_uplink_retries_total{uplink="cloud"} 3');
  });

  it('commits only the done prefix, resends only what is not done, dead-letters rejects', async () => {
    // First attempt: index 0 accepted, 1 retry, 2 rejected (poison), 3.. accepted. Then all accepted.
    const sink = new ScriptedSink((b, n) => {
      if (n === 1) {
        return {
          accepted: b.events.map((_, i) => i).filter((i) => i !== 1 && i !== 2),
          rejected: [2],
          retry: [1],
          error: 'event 3 is too large',
        };
      }
      return allAccepted(b);
    });
    const { log, reader, runner, dataDir: dir } = setup(sink);
    log.appendN(6);
    runner.start();
    await until(() => reader.committed === 6);
    // the prefix [1] first, then the rest once event 2 went through
    expect(reader.commits).toEqual([1, 6]);
    expect(sink.batches[1].events.map((e) => e.seq)).toEqual([2]);
    expect(sink.batches[1].batchId).toBe('2-2');
    const s = runner.status();
    expect(s.deadLettered).toBe(1);
    expect(s.deliveredEvents).toBe(5);
    const lines = readFileSync(join(dir, 'dead-letter', 'cloud.ndjson'), 'utf8')
      .trim()
      .split('\n');
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0]);
    expect(entry).toMatchObject({ uplink: 'cloud', reason: 'event 3 is too large', event: { seq: 3, id: 'gw-t:3' } });
    expect(s.deadLetterStore).toMatchObject({ held: 1, discarded: 0, path: join(dir, 'dead-letter', 'cloud.ndjson') });
  });

  it('honours retryAfterMs', async () => {
    const times: number[] = [];
    const sink = new ScriptedSink((b, n) => {
      times.push(Date.now());
      return n === 1 ? { accepted: [], rejected: [], retry: [0], retryAfterMs: 300 } : allAccepted(b);
    });
    const { log, reader, runner } = setup(sink);
    log.appendN(1);
    runner.start();
    await until(() => reader.committed === 1);
    expect(times[1] - times[0]).toBeGreaterThanOrEqual(290);
  });

  it('forwards only the kinds and topics of its filter', async () => {
    const sink = new ScriptedSink();
    const { log, reader, runner } = setup(sink, { filter: { kinds: ['anomaly', 'aggregate'], topics: ['plant/#'] } });
    log.appendN(3, 'plant/tank/temp', 'reading');
    log.appendN(2, 'plant/tank/temp', 'anomaly');
    log.appendN(2, 'office/temp', 'anomaly');
    log.appendN(1, 'plant/line1/rate', 'aggregate');
    runner.start();
    await until(() => reader.committed === 8);
    expect(sink.seqs()).toEqual([4, 5, 8]);
  });

  it('holds events outside its transmit window until flush()', async () => {
    const sink = new ScriptedSink();
    // A window twelve hours away.
    const { log, reader, runner } = setup(sink, { transmitWindows: [`* ${(new Date().getHours() + 12) % 24} * * *`] });
    log.appendN(10);
    runner.start();
    await until(() => runner.status().state === 'window-closed');
    await new Promise((r) => setTimeout(r, 100));
    expect(sink.batches).toHaveLength(0);
    expect(runner.status().windowOpen).toBe(false);
    expect(runner.status().pendingEvents).toBe(10);
    // waiting events show as lag even though none is in flight
    expect(runner.status().lagSeconds).toBeGreaterThan(0);
    runner.flush();
    await until(() => reader.committed === 10);
    // once caught up, the window applies again
    log.appendN(3);
    await new Promise((r) => setTimeout(r, 150));
    expect(reader.committed).toBe(10);
  });

  it('keeps to its bandwidth cap', async () => {
    const sink = new ScriptedSink((b) => ({ ...allAccepted(b), bytes: 1000 }));
    const { log, reader, runner } = setup(sink, { batch: { maxEvents: 1, maxDelay: 0 }, maxBytesPerSecond: 4000 });
    log.appendN(10);
    const started = Date.now();
    runner.start();
    await until(() => reader.committed === 10);
    // 10 kB at 4 kB/s: 4 kB go in the first second's burst, each later 1 kB waits 250 ms for its
    // predecessor's debt: the 10th send starts after about 1.25 s.
    expect(Date.now() - started).toBeGreaterThanOrEqual(1200);
  });

  it('stops within its deadline with a hung send, leaving the events uncommitted', async () => {
    const sink = new ScriptedSink(() => new Promise<SendResult>(() => {}));
    const { log, reader, runner } = setup(sink);
    log.appendN(5);
    runner.start();
    await until(() => sink.batches.length === 1);
    const started = Date.now();
    await runner.stop(300);
    expect(Date.now() - started).toBeLessThan(1500);
    expect(reader.committed).toBe(0);
    expect(runner.status().state).toBe('stopped');
  });
});

describe('UplinkRunner, disabled', () => {
  it('sends nothing and keeps its cursor, but reports the backlog', async () => {
    const sink = new ScriptedSink();
    const { log, reader, runner } = setup(sink, { enabled: false });
    log.appendN(7);
    runner.start();
    await new Promise((r) => setTimeout(r, 100));
    expect(sink.batches).toHaveLength(0);
    expect(reader.committed).toBe(0);
    expect(runner.status()).toMatchObject({ state: 'disabled', pendingEvents: 7 });
  });
});
