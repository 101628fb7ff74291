/**
 * Ingest figures, side by side with their baselines in one run: durable QoS 1 and QoS 0 ingest
 * through the gateway vs a bare aedes broker; p99 publish→PUBACK at a steady 10k msg/s; ingest with
 * 10 million events already in the log vs an empty log; restart time to /healthz green with 10M
 * events buffered; RssAnon peak of the gateway; write amplification (bytes written to storage per
 * byte of event). Rounds alternate between the two sides so machine noise hits both alike; the
 * median round is reported.
 */
import { openRingLog } from '../../../buffer/index.js';
import { encodeEvent } from '../../../src/core/event.js';
import { freePort } from '../../helpers/peers.js';
import { apiStatus, type Child, startBareAedes, startGateway } from '../gateway-proc.js';
import { runLoadInChild } from '../mqtt-load.js';
import { rssSampler, writeBytes } from '../proc.js';
import type { BenchCase, BenchContext, BenchResult } from '../types.js';

const SIZE = 100;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Bytes of the stored envelope of one load-generator message (what "a byte of event" is). */
export function envelopeBytes(): number {
  const body = `{"c":3,"v":21.5,"i":1000012345}`.padEnd(SIZE, ' ').trim();
  return Buffer.byteLength(encodeEvent('gw-bench', 1_234_567, Date.now(), { source: 'mqtt', topic: 'bench/3/temp', payload: null, payloadJson: body }));
}

async function buildLog(ctx: BenchContext, dir: string, events: number): Promise<number> {
  const log = await openRingLog({
    dir,
    gatewayId: 'gw-bench',
    config: { maxBytes: 8 * 1024 ** 3, onFull: 'drop-oldest', retention: 365 * 86_400_000, commitInterval: 5, commitEvents: 5000, diskReserve: 64 * 1024 ** 2 },
  });
  const t0 = performance.now();
  const batch = 2000;
  const make = (from: number) =>
    Array.from({ length: batch }, (_, i) => {
      const c = (from + i) % 10;
      return { source: 'mqtt', topic: `bench/${c}/temp`, payload: null, payloadJson: `{"c":${c},"v":21.5,"i":${1_000_000_000 + from + i}}` };
    });
  let done = 0;
  const inflight = new Set<Promise<unknown>>();
  for (let n = 0; n < events; n += batch) {
    const p = log.append(make(n)).then(() => {
      done += batch;
      inflight.delete(p);
    });
    inflight.add(p);
    if (inflight.size >= 8) await Promise.race(inflight);
    if (n % 1_000_000 === 0 && n > 0) ctx.log(`log: ${n / 1e6}M events, ${Math.round(n / ((performance.now() - t0) / 1000))} ev/s`);
  }
  await Promise.all(inflight);
  const rate = done / ((performance.now() - t0) / 1000);
  await log.close();
  return rate;
}

const bench: BenchCase = {
  name: 'buffer-ingest',
  description: 'ring log behind the broker: QoS 1/0 ingest vs bare aedes, PUBACK p99, 10M-event log, restart, RssAnon, write amplification',
  timeoutMs: 12 * 60_000,
  async run(ctx) {
    const q = ctx.quick;
    // Five rounds a side: on a shared 2-core machine a single round of either side varies by 20%.
    const rounds = q ? 1 : 5;
    const perClient = q ? 10_000 : 40_000;
    const bigLog = q ? 1_000_000 : 10_000_000;
    const results: BenchResult[] = [];
    const children: Child[] = [];
    const cfgDir = ctx.tempDir('sluice-bench-cfg-');
    try {
      const aedesPort = await freePort();
      const bare = await startBareAedes(aedesPort);
      children.push(bare);
      const emptyDir = ctx.tempDir('sluice-bench-empty-');
      const gw = await startGateway({ root: ctx.root, dataDir: emptyDir, mqttPort: await freePort(), httpPort: await freePort(), configDir: cfgDir });
      children.push(gw);
      const emptyStartMs = gw.readyMs;
      const rss = rssSampler(gw.pid);
      // Peaks per phase too, so a miss points at its cause.
      const phase: Record<string, number> = {};
      let current = rssSampler(gw.pid);
      const endPhase = (name: string, next?: number) => {
        phase[name] = Math.round(current.stop());
        if (next !== undefined) current = rssSampler(next);
      };

      // Every load runs from a fresh generator process (mqtt-load.ts runLoadInChild), warmed up first.
      const load = (port: number, qos: 0 | 1, messages = perClient, rate = 0) =>
        runLoadInChild({ port, qos, clients: 10, messages, size: SIZE, window: 1000, rate, warmup: Math.min(2000, messages / 5) });
      ctx.log('warm-up');
      await load(aedesPort, 1, 5000);
      await load(gw.mqttPort, 1, 5000);

      // QoS 1 and QoS 0, alternating; write amplification over the gateway's QoS 1 rounds.
      const side = { aedes1: [] as number[], gw1: [] as number[], aedes0: [] as number[], gw0: [] as number[] };
      let gwWritten = 0;
      let gwMessages = 0;
      for (let r = 0; r < rounds; r++) {
        side.aedes1.push((await load(aedesPort, 1)).rate);
        await new Promise((res) => setTimeout(res, 500));
        const w0 = writeBytes(gw.pid);
        const g = await load(gw.mqttPort, 1);
        side.gw1.push(g.rate);
        // let LevelDB's background flush and compaction of this round land on the same account
        await new Promise((res) => setTimeout(res, 1500));
        gwWritten += writeBytes(gw.pid) - w0;
        gwMessages += g.messages;
        ctx.log(`QoS 1 round ${r + 1}: aedes ${Math.round(side.aedes1.at(-1)!)} msg/s, gateway ${Math.round(g.rate)} msg/s`);
      }
      endPhase('qos1', gw.pid);
      for (let r = 0; r < rounds; r++) {
        side.aedes0.push((await load(aedesPort, 0)).rate);
        side.gw0.push((await load(gw.mqttPort, 0)).rate);
        ctx.log(`QoS 0 round ${r + 1}: aedes ${Math.round(side.aedes0.at(-1)!)} msg/s, gateway ${Math.round(side.gw0.at(-1)!)} msg/s`);
      }
      const a1 = median(side.aedes1);
      const g1 = median(side.gw1);
      const a0 = median(side.aedes0);
      const g0 = median(side.gw0);
      results.push({ name: 'ingest.qos1.aedes', value: a1, unit: 'msg/s', rounds: side.aedes1 });
      results.push({ name: 'ingest.qos1.gateway', value: g1, unit: 'msg/s', baseline: a1, baselineName: 'ingest.qos1.aedes', ratio: g1 / a1, target: '>= 0.6x bare aedes', pass: g1 / a1 >= 0.6, rounds: side.gw1 });
      results.push({ name: 'ingest.qos0.aedes', value: a0, unit: 'msg/s', rounds: side.aedes0 });
      results.push({ name: 'ingest.qos0.gateway', value: g0, unit: 'msg/s', baseline: a0, baselineName: 'ingest.qos0.aedes', ratio: g0 / a0, target: '>= 0.8x bare aedes', pass: g0 / a0 >= 0.8, rounds: side.gw0 });
      const eventBytes = envelopeBytes();
      const wa = gwWritten / (gwMessages * eventBytes);
      results.push({ name: 'buffer.write_amplification', value: wa, unit: 'bytes/byte', target: '<= 3', pass: wa <= 3, writtenBytes: gwWritten, events: gwMessages, eventBytes });

      endPhase('qos0', gw.pid);
      // Latency at a steady 10k msg/s.
      const steady = q ? 30_000 : 100_000;
      const la = await load(aedesPort, 1, steady / 10, 10_000);
      const lg = await load(gw.mqttPort, 1, steady / 10, 10_000);
      results.push({ name: 'puback.p99.aedes', value: la.latency!.p99, unit: 'ms', p50: la.latency!.p50, max: la.latency!.max, rate: la.rate });
      results.push({ name: 'puback.p99.gateway', value: lg.latency!.p99, unit: 'ms', baseline: la.latency!.p99, baselineName: 'puback.p99.aedes', target: '<= 20 ms at 10k msg/s', pass: lg.latency!.p99 <= 20, p50: lg.latency!.p50, max: lg.latency!.max, rate: lg.rate });
      ctx.log(`p99 at 10k msg/s: aedes ${la.latency!.p99.toFixed(1)} ms, gateway ${lg.latency!.p99.toFixed(1)} ms`);

      endPhase('steady10k');
      // A log with 10M events, built directly through the RingLog.
      const bigDir = ctx.tempDir('sluice-bench-big-');
      ctx.log(`building a ${bigLog / 1e6}M-event log`);
      const buildRate = await buildLog(ctx, bigDir, bigLog);
      results.push({ name: 'buffer.append.batched', value: buildRate, unit: 'events/s', note: 'RingLog.append, 2000-event batches, 8 in flight' });

      // Restart with the big log: time to /healthz green; baseline: the empty log's start.
      const big = await startGateway({ root: ctx.root, dataDir: bigDir, mqttPort: await freePort(), httpPort: await freePort(), configDir: cfgDir });
      children.push(big);
      const bigRss = rssSampler(big.pid);
      const st = (await apiStatus(big.httpPort)) as { buffer?: { events?: number } };
      results.push({ name: 'restart.healthz.10M', value: big.readyMs, unit: 'ms', baseline: emptyStartMs, baselineName: 'restart.healthz.empty', target: '<= 2000 ms', pass: big.readyMs <= 2000, events: st.buffer?.events });
      ctx.log(`restart with ${st.buffer?.events} events: healthy in ${Math.round(big.readyMs)} ms (empty: ${Math.round(emptyStartMs)} ms)`);

      // Ingest on the big log vs the empty one, alternating.
      await load(big.mqttPort, 1, 5000);
      const onEmpty: number[] = [];
      const onBig: number[] = [];
      for (let r = 0; r < rounds; r++) {
        onEmpty.push((await load(gw.mqttPort, 1)).rate);
        onBig.push((await load(big.mqttPort, 1)).rate);
        ctx.log(`QoS 1 round ${r + 1}: empty log ${Math.round(onEmpty.at(-1)!)} msg/s, 10M log ${Math.round(onBig.at(-1)!)} msg/s`);
      }
      const e = median(onEmpty);
      const b = median(onBig);
      results.push({ name: 'ingest.qos1.gateway.10M', value: b, unit: 'msg/s', baseline: e, baselineName: 'ingest.qos1.gateway.empty', ratio: b / e, target: 'within 15% of the empty log', pass: b / e >= 0.85, rounds: onBig, baselineRounds: onEmpty });

      phase.log10M = Math.round(bigRss.peak());
      const peak = Math.max(rss.stop(), bigRss.stop());
      results.push({
        name: 'gateway.rss_anon.peak',
        value: peak,
        unit: 'MB',
        target: '<= 120 MB',
        pass: peak <= 120,
        byPhase: phase,
        note: 'peak RssAnon of either gateway over all of the above, sampled every 100 ms; byPhase: qos1, qos0 and steady10k rounds on the empty log, log10M: restart and rounds on the 10M log',
      });
      return results;
    } finally {
      for (const c of children.reverse()) await c.stop();
    }
  },
};

export default bench;
