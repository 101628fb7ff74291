/**
 * The ring log's own append latency under the PUBACK-latency load (100 producers, each waiting for
 * its append, 10k events/s in all), for several fsync bounds side by side: what the group commit
 * and `buffer.maxFsyncsPerSecond` cost a durable acknowledgement before any broker work, and how
 * many fsyncs a second each bound spends. Beside them, the same load group-committed to a plain
 * preallocated file (write + fdatasync, no storage engine): the disk's floor under any durable log,
 * i.e. what the ring log's LevelDB write adds on top of the fsync it cannot avoid.
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { openRingLog } from '../../../buffer/index.js';
import type { BenchCase, BenchResult } from '../types.js';

const PRODUCERS = 100;
const RATE_EACH = 100; // events/s per producer

interface Figures {
  p50: number;
  p99: number;
  fsyncsPerSecond: number;
  rate: number;
}

/** Runs the producers against `append` for `seconds`; latencies of every append, sorted. */
async function drive(append: (producer: number) => Promise<void>, seconds: number) {
  const latencies: number[] = [];
  let stop = false;
  const producer = async (c: number) => {
    let next = performance.now() + (c * 1000) / RATE_EACH / PRODUCERS;
    while (!stop) {
      const wait = next - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const t = performance.now();
      await append(c);
      latencies.push(performance.now() - t);
      next += 1000 / RATE_EACH;
    }
  };
  const t0 = performance.now();
  const running = Array.from({ length: PRODUCERS }, (_, c) => producer(c));
  await new Promise((r) => setTimeout(r, seconds * 1000));
  stop = true;
  await Promise.all(running);
  const elapsed = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))];
  return { p50: at(0.5), p99: at(0.99), elapsed, rate: latencies.length / elapsed };
}

async function measureRingLog(dir: string, maxFsyncsPerSecond: number | undefined, seconds: number): Promise<Figures> {
  const log = await openRingLog({
    dir,
    gatewayId: 'gw-bench',
    config: { maxBytes: 1024 ** 3, onFull: 'drop-oldest', retention: 86_400_000, commitEvents: 2000, diskReserve: 64 * 1024 ** 2, maxFsyncsPerSecond },
  });
  const before = log.stats().fsyncs ?? 0;
  const f = await drive((c) => log.append([{ source: 'mqtt', topic: `bench/${c}/temp`, payload: null, payloadJson: `{"c":${c},"v":21.5}` }]).then(() => undefined), seconds);
  const fsyncsPerSecond = ((log.stats().fsyncs ?? 0) - before) / f.elapsed;
  await log.close();
  return { ...f, fsyncsPerSecond };
}

const PLAIN_FILE_BYTES = 64 * 1024 ** 2;
const ENVELOPE_BYTES = 200; // about one stored event of the load above

/**
 * The same group commit (one write in flight; the next takes whatever arrived meanwhile) to a file
 * whose blocks are written once beforehand, so an fdatasync flushes data only, never an extent or
 * size change: the cheapest durable append this disk offers.
 */
async function measurePlainFile(dir: string, seconds: number): Promise<Figures> {
  const file = await open(join(dir, 'plain.log'), 'w+');
  const zeros = Buffer.alloc(1024 ** 2);
  for (let at = 0; at < PLAIN_FILE_BYTES; at += zeros.length) await file.write(zeros, 0, zeros.length, at);
  await file.sync();
  const envelope = Buffer.alloc(ENVELOPE_BYTES, 0x61);
  let waiting: (() => void)[] = [];
  let inFlight = false;
  let position = 0;
  let fsyncs = 0;
  const commit = async () => {
    if (inFlight || waiting.length === 0) return;
    inFlight = true;
    const batch = waiting;
    waiting = [];
    const bytes = Buffer.concat(batch.map(() => envelope));
    if (position + bytes.length > PLAIN_FILE_BYTES) position = 0;
    await file.write(bytes, 0, bytes.length, position);
    await file.datasync();
    position += bytes.length;
    fsyncs++;
    inFlight = false;
    for (const done of batch) done();
    void commit();
  };
  const f = await drive(
    () =>
      new Promise<void>((resolve) => {
        waiting.push(resolve);
        void commit();
      }),
    seconds,
  );
  await file.close();
  return { ...f, fsyncsPerSecond: fsyncs / f.elapsed };
}

const bench: BenchCase = {
  name: 'buffer-append-latency',
  description:
    'ring log append p50/p99 at 100 producers x 100 events/s (window 1) with no fsync bound (the default) and bounds 1000 and 200, beside a plain preallocated file; fsyncs/s',
  timeoutMs: 120_000,
  async run(ctx) {
    const seconds = ctx.quick ? 2 : 6;
    const results: BenchResult[] = [];
    const bounds = [
      { name: 'default', value: undefined },
      { name: '1000', value: 1000 },
      { name: '200', value: 200 },
    ];
    const figures = new Map<string, Figures>();
    for (const b of bounds) {
      const f = await measureRingLog(ctx.tempDir('append-latency-'), b.value, seconds);
      figures.set(`fsync_${b.name}`, f);
      ctx.log(`fsync bound ${b.value ?? 'none'}/s: p50 ${f.p50.toFixed(2)} ms, p99 ${f.p99.toFixed(2)} ms, ${Math.round(f.fsyncsPerSecond)} fsync/s at ${Math.round(f.rate)} events/s`);
    }
    const plain = await measurePlainFile(ctx.tempDir('append-latency-plain-'), seconds);
    figures.set('plain_file', plain);
    ctx.log(`plain preallocated file: p50 ${plain.p50.toFixed(2)} ms, p99 ${plain.p99.toFixed(2)} ms, ${Math.round(plain.fsyncsPerSecond)} fsync/s at ${Math.round(plain.rate)} events/s`);
    for (const [name, f] of figures) {
      const isDefault = name === 'fsync_default';
      // the default's figures beside the plain file's: what the ring log adds to the disk's floor
      const overFloor = (p: 'p50' | 'p99') => (isDefault ? { baseline: plain[p], baselineName: `append.10k.${p}.plain_file`, ratio: f[p] / plain[p] } : {});
      results.push({ name: `append.10k.p50.${name}`, value: f.p50, unit: 'ms', ...overFloor('p50'), ...(isDefault ? { target: '<= 1 ms', pass: f.p50 <= 1 } : {}) });
      results.push({ name: `append.10k.p99.${name}`, value: f.p99, unit: 'ms', ...overFloor('p99') });
      results.push({ name: `append.10k.fsyncs_per_s.${name}`, value: f.fsyncsPerSecond, unit: 'fsync/s' });
    }
    return results;
  },
};

export default bench;
