/** The runner on the real ring log (buffer/): cursors survive a restart, live-first spans are acknowledged exactly. */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { openRingLog } from '../buffer/index.js';
import type { RingLog } from '../buffer/types.js';
import { bufferSchema } from '../src/config/schema.js';
import { silentLogger } from '../src/core/log.js';
import { tempDir } from '../test/helpers/peers.js';
import { mqttUplinkSchema } from './mqtt/schema.js';
import { readerOptions, UplinkRunner } from './runner.js';
import { allAccepted, type Batch, type SendResult, type Sink } from './sink.js';
import { until } from '../test/helpers/until.js';
import { cleanupsAfterEach } from '../test/helpers/cleanups.js';

class RecordingSink implements Sink {
  seqs: number[] = [];
  constructor(private readonly reply: (b: Batch) => SendResult | Promise<SendResult> = allAccepted) {}
  async start() {}
  async stop() {}
  health() {
    return { connected: true };
  }
  async send(b: Batch) {
    const r = await this.reply(b);
    for (const i of r.accepted) this.seqs.push(b.events[i].seq);
    return r;
  }
}

const cleanups = cleanupsAfterEach();

function input(n: number, kind: 'reading' | 'anomaly' = 'reading') {
  return Array.from({ length: n }, (_, i) => ({ source: 'test', topic: 'sensors/a/temp', payload: { i }, kind }));
}

describe('UplinkRunner on the ring log', () => {
  it('resumes after a restart from its committed cursor, losing nothing', async () => {
    const dir = tempDir();
    cleanups.push(() => dir.cleanup());
    const open = () => openRingLog({ dir: dir.path, gatewayId: 'gw-r', config: bufferSchema.parse({}) });
    const config = mqttUplinkSchema.parse({
      name: 'cloud',
      type: 'mqtt',
      url: 'mqtt://127.0.0.1:1',
      batch: { maxEvents: 100, maxDelay: 0 },
      retry: { initialDelay: 5, maxDelay: 20 },
    });
    const delivered: number[] = [];
    let log: RingLog = await open();
    await log.append(input(1000));
    // The first run: the sink accepts 300 events, then stalls (the peer went away).
    let accepted = 0;
    const sink1 = new RecordingSink(async (b) => {
      if (accepted >= 300) return { accepted: [], rejected: [], retry: [], error: 'peer gone' };
      accepted += b.events.length;
      for (const e of b.events) delivered.push(e.seq);
      return allAccepted(b);
    });
    const run1 = new UplinkRunner({
      config,
      sink: sink1,
      reader: log.reader('cloud', readerOptions(config)),
      gatewayId: 'gw-r',
      logger: silentLogger,
      registry: new Registry(),
    });
    run1.start();
    await until(() => run1.status().retried > 0);
    expect(run1.status().pendingEvents).toBe(700);
    await run1.stop(1000);
    await log.close();

    log = await open();
    cleanups.push(() => log.close());
    await log.append(input(200));
    const sink2 = new RecordingSink((b) => {
      for (const e of b.events) delivered.push(e.seq);
      return allAccepted(b);
    });
    const run2 = new UplinkRunner({
      config,
      sink: sink2,
      reader: log.reader('cloud', readerOptions(config)),
      gatewayId: 'gw-r',
      logger: silentLogger,
      registry: new Registry(),
    });
    cleanups.push(() => run2.stop(1000));
    run2.start();
    await until(() => run2.status().pendingEvents === 0 && delivered.length >= 1200);
    // the second run starts where the first one's acknowledgements ended: no gap, no re-send
    expect(sink2.seqs[0]).toBe(301);
    expect(new Set(delivered)).toEqual(new Set(Array.from({ length: 1200 }, (_, i) => i + 1)));
    expect(delivered.length).toBe(1200);
  });

  it('live first: fresh events and anomalies go before the backlog, which still drains', async () => {
    const dir = tempDir();
    cleanups.push(() => dir.cleanup());
    const log = await openRingLog({ dir: dir.path, gatewayId: 'gw-r', config: bufferSchema.parse({}) });
    cleanups.push(() => log.close());
    await log.append(input(2000)); // the backlog
    const config = mqttUplinkSchema.parse({
      name: 'cloud',
      type: 'mqtt',
      url: 'mqtt://127.0.0.1:1',
      batch: { maxEvents: 100, maxDelay: 0 },
      liveFirst: true,
      backlogShare: 0.25,
    });
    let gate: () => void = () => {};
    let held = true;
    const sink = new RecordingSink(async (b) => {
      if (held) await new Promise<void>((r) => (gate = r));
      return allAccepted(b);
    });
    const reader = log.reader('cloud', readerOptions(config));
    const runner = new UplinkRunner({
      config,
      sink,
      reader,
      gatewayId: 'gw-r',
      logger: silentLogger,
      registry: new Registry(),
    });
    cleanups.push(() => runner.stop(1000));
    runner.start();
    // The first backlog batch is in flight and held; meanwhile live readings and an anomaly arrive.
    await until(() => runner.status().state === 'sending');
    const live = await log.append(input(300));
    const anomaly = await log.append(input(1, 'anomaly'));
    held = false;
    gate();
    await until(() => sink.seqs.length === 2301);
    const firstLive = sink.seqs.indexOf(live.firstSeq);
    const lastBacklog = sink.seqs.indexOf(2000);
    // the anomaly right after the batch in flight and the one read ahead; all live events before the backlog ends
    expect(sink.seqs.indexOf(anomaly.firstSeq)).toBeLessThanOrEqual(200);
    expect(firstLive).toBeLessThan(lastBacklog);
    expect(sink.seqs.indexOf(live.lastSeq)).toBeLessThan(lastBacklog);
    expect(new Set(sink.seqs).size).toBe(2301);
    expect(runner.status().pendingEvents).toBe(0);
  });
});
