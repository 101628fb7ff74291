/**
 * Uplink drain: a 1M-event backlog in a real ring log drained to a real Mosquitto (MQTT uplink) and
 * to a real NATS JetStream stream (NATS uplink), while live events are appended at 5k/s. Measured:
 * - `uplink.<sink>.drain`: backlog events/s delivered (acknowledged by the peer), from runner start
 *   until the backlog is acknowledged; target >= 100k events/s.
 * - `uplink.<sink>.live.p99`: for the live events, append (ring log) → seen by a cloud-side
 *   subscriber, 99th percentile, in ms; target <= 1000 ms. (Ingest through the local broker is
 *   measured by the ingest cases; this case starts at the durable append.)
 * - baseline, side by side: the bare client library (mqtt.js QoS 1 / nats.js JetStream publish)
 *   publishing pre-built batch documents of the same size, one at a time waiting for each ack.
 */

import { loadavg } from 'node:os';
import mqtt from 'mqtt';
import { connect as natsConnect } from 'nats';
import { Registry } from 'prom-client';
import { openRingLog } from '../../../buffer/index.js';
import type { RingLog } from '../../../buffer/types.js';
import { bufferSchema } from '../../../src/config/schema.js';
import type { EventInput } from '../../../src/core/event.js';
import { silentLogger } from '../../../src/core/log.js';
import { MqttSink } from '../../../uplink/mqtt/index.js';
import { mqttUplinkSchema } from '../../../uplink/mqtt/schema.js';
import { NatsSink } from '../../../uplink/nats/index.js';
import { natsUplinkSchema } from '../../../uplink/nats/schema.js';
import { readerOptions, UplinkRunner } from '../../../uplink/runner.js';
import { batchDocument, type Sink } from '../../../uplink/sink.js';
import { type Peer, startMosquitto, startNats } from '../../helpers/peers.js';
import type { BenchCase, BenchContext, BenchResult } from '../types.js';
import { percentile, startCloudSubscriber } from '../uplink-cloud.js';

const BATCH = Number(process.env.SLUICE_BENCH_BATCH ?? 1000);
const LIVE_RATE = 5000;

function reading(i: number): EventInput {
  return { source: 'bench', topic: `sensors/s${i % 100}/temp`, payload: { value: 20 + (i % 50) / 10, unit: '°C' } };
}

async function fillBacklog(log: RingLog, n: number): Promise<void> {
  for (let i = 0; i < n; i += 5000)
    await log.append(Array.from({ length: Math.min(5000, n - i) }, (_, k) => reading(i + k)));
}

/** A batch document of BATCH typical events, as the uplink sends them. */
function sampleDocument(): Buffer {
  const events = Array.from({ length: BATCH }, (_, i) => {
    const e = reading(i);
    return {
      seq: i + 1,
      ts: Date.now(),
      kind: 'reading' as const,
      topic: e.topic,
      json: JSON.stringify({
        id: `gw-bench:${i + 1}`,
        seq: i + 1,
        ts: Date.now(),
        source: 'bench',
        topic: e.topic,
        payload: e.payload,
        kind: 'reading',
      }),
    };
  });
  return Buffer.from(batchDocument({ gateway: 'gw-bench', batchId: `1-${BATCH}`, events }));
}


interface Target {
  name: 'mqtt' | 'nats';
  start(): Promise<Peer>;
  baseline(peer: Peer, events: number): Promise<number>;
  sink(peer: Peer): {
    sink: Sink;
    config: ReturnType<typeof mqttUplinkSchema.parse> | ReturnType<typeof natsUplinkSchema.parse>;
  };
  /** Where the cloud side subscribes. */
  topic: string;
}

const common = { batch: { maxEvents: BATCH, maxBytes: '1MiB', maxDelay: '20ms' }, liveFirst: true, backlogShare: 0.5 };

const targets: Target[] = [
  {
    name: 'mqtt',
    start: () => startMosquitto(),
    async baseline(peer, events) {
      const doc = sampleDocument();
      const c = await mqtt.connectAsync(peer.url, { clean: true });
      const t0 = performance.now();
      for (let n = 0; n < events; n += BATCH) await c.publishAsync('bench/baseline', doc, { qos: 1 });
      const rate = events / ((performance.now() - t0) / 1000);
      await c.endAsync();
      return rate;
    },
    sink(peer) {
      const config = mqttUplinkSchema.parse({ name: 'cloud', type: 'mqtt', url: peer.url, ...common });
      return { config, sink: new MqttSink(config, { gatewayId: 'gw-bench', logger: silentLogger }) };
    },
    topic: 'sluice/gw-bench/events',
  },
  {
    name: 'nats',
    start: () => startNats(),
    async baseline(peer, events) {
      const doc = sampleDocument();
      const nc = await natsConnect({ servers: peer.url });
      const jsm = await nc.jetstreamManager();
      await jsm.streams.add({ name: 'BASE', subjects: ['bench.baseline'] });
      const js = nc.jetstream();
      const t0 = performance.now();
      for (let n = 0; n < events; n += BATCH) await js.publish('bench.baseline', doc, { msgID: `b${n}` });
      const rate = events / ((performance.now() - t0) / 1000);
      await jsm.streams.delete('BASE');
      await nc.close();
      return rate;
    },
    sink(peer) {
      const config = natsUplinkSchema.parse({
        name: 'cloud',
        type: 'nats',
        servers: [peer.url],
        subject: 'sluice.events',
        stream: { name: 'SLUICE', create: true },
        ...common,
      });
      return { config, sink: new NatsSink(config, { gatewayId: 'gw-bench', logger: silentLogger }) };
    },
    topic: 'sluice.events',
  },
];

async function drain(ctx: BenchContext, t: Target): Promise<BenchResult[]> {
  const backlog = ctx.quick ? 200_000 : 1_000_000;
  const peer = await t.start();
  const cleanups: (() => Promise<unknown>)[] = [() => peer.stop()];
  try {
    ctx.log(`${t.name}: baseline (bare client, ${BATCH}-event documents, one ack at a time)`);
    const baseline = await t.baseline(peer, ctx.quick ? 100_000 : 300_000);

    ctx.log(`${t.name}: filling a ${backlog.toLocaleString('en-US')}-event backlog`);
    const log = await openRingLog({
      dir: ctx.tempDir(),
      gatewayId: 'gw-bench',
      config: bufferSchema.parse({ maxBytes: '2GiB' }),
    });
    cleanups.unshift(() => log.close());
    await fillBacklog(log, backlog);
    const backlogLast = log.stats().lastSeq;

    // Cloud side, in a worker thread: counts backlog events, times the live ones.
    const cloud = await startCloudSubscriber({ kind: t.name, url: peer.url, topic: t.topic, backlogLast });
    cleanups.unshift(() => cloud.terminate());

    const { sink, config } = t.sink(peer);
    const runner = new UplinkRunner({
      config,
      sink,
      reader: log.reader('cloud', readerOptions(config)),
      gatewayId: 'gw-bench',
      logger: silentLogger,
      registry: new Registry(),
    });
    cleanups.unshift(() => runner.stop(5000));

    // Live ingest at 5k events/s: 50 events every 10 ms (the log stamps each with its append time, `ts`).
    let liveSent = 0;
    let liveSeq = 0;
    const feeder = setInterval(() => {
      const batch = Array.from({ length: LIVE_RATE / 100 }, () => ({
        source: 'bench',
        topic: 'live/s1/temp',
        payload: { value: 21.5, n: liveSeq++ },
      }));
      liveSent += batch.length;
      void log.append(batch);
    }, 10);
    cleanups.unshift(async () => clearInterval(feeder));

    ctx.log(`${t.name}: draining with live ingest at ${LIVE_RATE}/s`);
    const t0 = performance.now();
    runner.start();
    const deadline = Date.now() + (ctx.quick ? 60_000 : 150_000);
    while (cloud.seenBacklog() < backlog && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const seconds = (performance.now() - t0) / 1000;
    const seenBacklog = cloud.seenBacklog();
    const drainRate = seenBacklog / seconds;
    // Live keeps flowing for a moment after the backlog is gone, so the tail of the latency is measured too.
    await new Promise((r) => setTimeout(r, 1000));
    clearInterval(feeder);
    await new Promise((r) => setTimeout(r, 500));
    const latencies = await cloud.report();
    const p99 = percentile(latencies, 99);
    ctx.log(
      `${t.name}: ${Math.round(drainRate)} events/s (baseline ${Math.round(baseline)}), live p99 ${p99} ms over ${latencies.length} events`,
    );
    return [
      {
        name: `uplink.${t.name}.drain`,
        value: Math.round(drainRate),
        unit: 'events/s',
        baseline: Math.round(baseline),
        baselineName: `uplink.${t.name}.bare-client`,
        ratio: Number((drainRate / baseline).toFixed(3)),
        target: '>= 100k events/s',
        pass: drainRate >= 100_000,
        backlog,
        seconds: Number(seconds.toFixed(2)),
        complete: seenBacklog >= backlog,
        // Other work on the machine skews the figure: the 1-minute load average when the drain ended.
        loadAverage: Number(loadavg()[0].toFixed(1)),
        retried: runner.status().retried,
        lastError: runner.status().lastError,
        batchEvents: BATCH,
      },
      {
        name: `uplink.${t.name}.live.p99`,
        value: p99,
        unit: 'ms',
        target: '<= 1000 ms (accepted → cloud subscriber, during the drain)',
        pass: p99 <= 1000,
        p50: percentile(latencies, 50),
        max: percentile(latencies, 100),
        liveEvents: latencies.length,
        liveAppended: liveSent,
        liveRate: LIVE_RATE,
      },
    ];
  } finally {
    for (const c of cleanups) await c().catch(() => {});
  }
}

const cases: BenchCase[] = targets.map((t) => ({
  name: `uplink-drain-${t.name}`,
  description: `1M-event backlog to ${t.name === 'mqtt' ? 'Mosquitto' : 'NATS JetStream'} with live ingest at 5k/s, vs the bare client`,
  timeoutMs: 300_000,
  run: (ctx) => drain(ctx, t),
}));
export default cases;
