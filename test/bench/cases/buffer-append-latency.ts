/**
 * The ring log's own append latency under the PUBACK-latency load (100 producers, each waiting for
 * its append, 10k events/s in all), for several fsync bounds side by side: what the group commit
 * and `buffer.maxFsyncsPerSecond` cost a durable acknowledgement before any broker work, and how
 * many fsyncs a second each bound spends.
 */
import { openRingLog } from '../../../buffer/index.js';
import type { BenchCase, BenchResult } from '../types.js';

const PRODUCERS = 100;
const RATE_EACH = 100; // events/s per producer

async function measure(dir: string, maxFsyncsPerSecond: number | undefined, seconds: number) {
  const log = await openRingLog({
    dir,
    gatewayId: 'gw-bench',
    config: { maxBytes: 1024 ** 3, onFull: 'drop-oldest', retention: 86_400_000, commitEvents: 2000, diskReserve: 64 * 1024 ** 2, maxFsyncsPerSecond },
  });
  const latencies: number[] = [];
  let stop = false;
  const producer = async (c: number) => {
    let next = performance.now() + (c * 1000) / RATE_EACH / PRODUCERS;
    while (!stop) {
      const wait = next - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const t = performance.now();
      await log.append([{ source: 'mqtt', topic: `bench/${c}/temp`, payload: null, payloadJson: `{"c":${c},"v":21.5}` }]);
      latencies.push(performance.now() - t);
      next += 1000 / RATE_EACH;
    }
  };
  const before = log.stats().fsyncs ?? 0;
  const t0 = performance.now();
  const running = Array.from({ length: PRODUCERS }, (_, c) => producer(c));
  await new Promise((r) => setTimeout(r, seconds * 1000));
  stop = true;
  await Promise.all(running);
  const elapsed = (performance.now() - t0) / 1000;
  const fsyncsPerSecond = ((log.stats().fsyncs ?? 0) - before) / elapsed;
  await log.close();
  latencies.sort((a, b) => a - b);
  const at = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))];
  return { p50: at(0.5), p99: at(0.99), fsyncsPerSecond, rate: latencies.length / elapsed };
}

const bench: BenchCase = {
  name: 'buffer-append-latency',
  description: 'ring log append p50/p99 at 100 producers x 100 events/s (window 1) with no fsync bound (the default) and bounds 1000 and 200; fsyncs/s',
  timeoutMs: 120_000,
  async run(ctx) {
    const seconds = ctx.quick ? 2 : 6;
    const results: BenchResult[] = [];
    const bounds = [
      { name: 'default', value: undefined },
      { name: '1000', value: 1000 },
      { name: '200', value: 200 },
    ];
    const figures = new Map<string, Awaited<ReturnType<typeof measure>>>();
    for (const b of bounds) {
      const f = await measure(ctx.tempDir('append-latency-'), b.value, seconds);
      figures.set(b.name, f);
      ctx.log(`fsync bound ${b.value ?? 'none'}/s: p50 ${f.p50.toFixed(2)} ms, p99 ${f.p99.toFixed(2)} ms, ${Math.round(f.fsyncsPerSecond)} fsync/s at ${Math.round(f.rate)} events/s`);
    }
    for (const [name, f] of figures) {
      results.push({ name: `append.10k.p50.fsync_${name}`, value: f.p50, unit: 'ms', ...(name === 'default' ? { target: '<= 1 ms', pass: f.p50 <= 1 } : {}) });
      results.push({ name: `append.10k.p99.fsync_${name}`, value: f.p99, unit: 'ms' });
      results.push({ name: `append.10k.fsyncs_per_s.fsync_${name}`, value: f.fsyncsPerSecond, unit: 'fsync/s' });
    }
    return results;
  },
};

export default bench;
