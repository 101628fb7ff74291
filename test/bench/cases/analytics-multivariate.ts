/**
 * The multivariate detector's cost: µs per vector for 8 and 52 variables (target ≤ 20 µs for 8)
 * beside a baseline over the same vectors, p independent EWMA z-tests (what watching each variable
 * on its own costs at least); its memory per device (heap measured over many detectors, and the
 * arrays it holds); and a reading through the engine in a group rule (alignment included).
 * Rounds alternate detector and baseline so machine noise hits both alike; the median is reported.
 */
import { Registry } from 'prom-client';
import { MultivariateDetector } from '../../../src/analytics/detectors/multivariate.js';
import { AnalyticsEngine, type ObservedEvent } from '../../../src/analytics/engine.js';
import { analyticsSchema } from '../../../src/analytics/schema.js';
import { silentLogger } from '../../../src/core/log.js';
import type { BenchCase, BenchResult } from '../types.js';

const TARGET_US_8 = 20;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** n vectors of p variables driven by three latent factors plus noise, with a shift at 80 %. */
function vectors(n: number, p: number): Float64Array[] {
  let s = 987654321;
  const r = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
  const load = Array.from({ length: p }, () => [r(), r(), r()]);
  return Array.from({ length: n }, (_, i) => {
    const f = [Math.sin(i / 50), Math.cos(i / 170), r()];
    const shift = i > 0.8 * n ? 0.5 : 0;
    return Float64Array.from({ length: p }, (_, j) => 10 + j + 3 * (load[j][0] * f[0] + load[j][1] * f[1] + load[j][2] * f[2]) + 0.2 * r() + (j === 0 ? shift : 0));
  });
}

/** p independent EW mean/variance z-tests over the same vectors. */
function baseline(vs: Float64Array[], p: number): number {
  const mean = new Float64Array(p);
  const v = new Float64Array(p).fill(1);
  let sink = 0;
  const t0 = process.hrtime.bigint();
  for (const x of vs) {
    for (let j = 0; j < p; j++) {
      const d = x[j] - mean[j];
      mean[j] += 0.01 * d;
      v[j] = 0.99 * (v[j] + 0.01 * d * d);
      if (Math.abs(d) > 4 * Math.sqrt(v[j])) sink++;
    }
  }
  const ns = Number(process.hrtime.bigint() - t0);
  if (sink < 0) throw new Error('unreachable');
  return ns / 1000 / vs.length;
}

function timeIt(vs: Float64Array[], p: number): number {
  const d = new MultivariateDetector(p);
  let sink = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < vs.length; i++) {
    d.processVector(vs[i], i * 1000);
    sink += d.lastScore;
  }
  const ns = Number(process.hrtime.bigint() - t0);
  if (sink < 0) throw new Error('unreachable');
  return ns / 1000 / vs.length;
}

/** Bytes per detector (heap and typed-array stores), warmed up, over `count` of them. */
function heapPerDetector(p: number, count: number, vs: Float64Array[]): number {
  globalThis.gc?.();
  const used = () => {
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  const before = used();
  const keep: MultivariateDetector[] = [];
  for (let k = 0; k < count; k++) {
    const d = new MultivariateDetector(p);
    for (let i = 0; i < 2; i++) d.processVector(vs[i], i);
    keep.push(d);
  }
  globalThis.gc?.();
  const after = used();
  if (keep.length !== count) throw new Error('unreachable');
  return (after - before) / count;
}

const bench: BenchCase = {
  name: 'analytics-multivariate',
  description: 'µs per vector of the multivariate detector (8 and 52 variables) vs p EWMA z-tests; memory per device; engine cost in a group rule',
  timeoutMs: 120_000,
  async run(ctx) {
    const rounds = ctx.quick ? 3 : 5;
    const results: BenchResult[] = [];
    for (const p of [8, 52]) {
      const n = (ctx.quick ? 20_000 : 200_000) / (p > 8 ? 4 : 1);
      const vs = vectors(n, p);
      timeIt(vs.slice(0, 5000), p);
      baseline(vs.slice(0, 5000), p);
      const cost: number[] = [];
      const base: number[] = [];
      for (let r = 0; r < rounds; r++) {
        base.push(baseline(vs, p));
        cost.push(timeIt(vs, p));
      }
      const value = median(cost);
      const b = median(base);
      ctx.log(`multivariate p=${p}: ${value.toFixed(2)} µs/vector (baseline ${b.toFixed(3)})`);
      results.push({
        name: `analytics.multivariate.p${p}.cost`,
        value: round(value),
        unit: 'µs/vector',
        baseline: round(b),
        baselineName: `analytics.ewma-z-tests.p${p}.cost`,
        ratio: round(value / b),
        ...(p === 8 ? { target: `<= ${TARGET_US_8} µs/vector`, pass: value <= TARGET_US_8 } : {}),
        vectors: n,
      });
      const heap = heapPerDetector(p, p > 8 ? 200 : 2000, vs);
      results.push({
        name: `analytics.multivariate.p${p}.memory`,
        value: Math.round(heap),
        unit: 'bytes/device',
        // The arrays it holds: mean, covariance, inverse, correlation and Cholesky scratch, 4 vectors.
        arrays: (4 * p * p + 6 * p) * 8,
        gcExposed: typeof globalThis.gc === 'function',
      });
    }

    // A reading through the engine: 8 sensors of 100 pumps on their own topics, in batches of 100.
    const rules = analyticsSchema.parse([{ name: 'bench', match: 'pump/+/#', group: { align: '500ms' } }]);
    const vs = vectors(ctx.quick ? 2_000 : 10_000, 8);
    const engineCost: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const engine = new AnalyticsEngine(rules, { logger: silentLogger, registry: new Registry(), publishLocal: () => {}, tickMs: 0 });
      const batch: ObservedEvent[] = [];
      let seq = 0;
      let events = 0;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < vs.length; i++) {
        for (let d = 0; d < 100; d++) {
          for (let j = 0; j < 8; j++) {
            batch.push({ seq: ++seq, ts: i * 1000 + j, topic: `pump/${d}/s${j}`, payload: { value: vs[i][j] }, kind: 'reading' });
            if (batch.length === 100) {
              engine.observe(batch);
              batch.length = 0;
            }
          }
        }
        events += 800;
        if (events >= (ctx.quick ? 100_000 : 400_000)) break;
      }
      engineCost.push(Number(process.hrtime.bigint() - t0) / 1000 / events);
      engine.close();
    }
    results.push({ name: 'analytics.engine.multivariate.cost', value: round(median(engineCost)), unit: 'µs/reading', devices: 100, variables: 8, batch: 100 });
    return results;
  },
};

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

export default bench;
