/**
 * Figures: the per-event cost of each detector (µs per reading, target ≤ 5 µs) beside a
 * baseline, a plain EWMA mean/variance loop behind the same call shape; the cost of a reading
 * through the whole engine (routing, field, auto detector, a tumbling window); and the default
 * detector's NAB score (standard profile, target ≥ 65) when the dataset is present.
 * Rounds alternate detector and baseline so machine noise hits both alike; the median is reported.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { AnalyticsEngine, type ObservedEvent } from '../../../src/analytics/engine.js';
import type { Detector } from '../../../src/analytics/detectors/detector.js';
import { createDetector } from '../../../src/analytics/detectors/index.js';
import { analyticsSchema, type DetectorRef } from '../../../src/analytics/schema.js';
import { silentLogger } from '../../../src/core/log.js';
import { NAB_DIR, NAB_SCORER, replayCorpus, scoreCorpus } from '../../nab/nab.js';
import type { BenchCase, BenchResult } from '../types.js';

const TARGET_US = 5;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** A sensor-like stream: daily-ish wave, noise, occasional spikes, a level shift and a stuck stretch. */
function stream(n: number): Float64Array {
  const v = new Float64Array(n);
  let s = 12345;
  const r = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
  for (let i = 0; i < n; i++) {
    const level = i % 50_000 > 40_000 ? 8 : 0;
    v[i] = 20 + level + 5 * Math.sin((2 * Math.PI * i) / 288) + r() + (i % 9973 === 0 ? 30 : 0);
    if (i % 20_011 < 40 && i > 1000) v[i] = v[i - 1];
  }
  return v;
}

/** The baseline: what any streaming detector costs at least (EW mean and variance, a z test). */
class EwmaLoop implements Detector {
  readonly type = 'baseline';
  lastScore = 0;
  private mean = 0;
  private v = 1;
  process(x: number) {
    const d = x - this.mean;
    this.mean += 0.01 * d;
    this.v = 0.99 * (this.v + 0.01 * d * d);
    this.lastScore = Math.abs(d) > 4 * Math.sqrt(this.v) ? 1 : 0;
    return null;
  }
  snapshot() {
    return null;
  }
  restore() {}
}

function timeIt(make: () => Detector, values: Float64Array): number {
  const d = make();
  let sink = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < values.length; i++) {
    d.process(values[i], i * 1000);
    sink += d.lastScore;
  }
  const ns = Number(process.hrtime.bigint() - t0);
  if (sink < 0) throw new Error('unreachable');
  return ns / 1000 / values.length;
}

const DETECTORS: DetectorRef[] = [
  'auto',
  { type: 'threshold', high: 40, hysteresis: 1 },
  { type: 'rate-of-change', maxDelta: 10 },
  { type: 'flatline', count: 20, tolerance: 0, duration: undefined },
  { type: 'gap', factor: 3 },
  { type: 'zscore', window: 64, threshold: 3.5, warmup: 16 },
  { type: 'ewma', lambda: 0.2, limit: 3, warmup: 30 },
  { type: 'spike-and-dip', confidence: 99, historySize: 120, mode: 'spikesanddips' },
  { type: 'change-point', confidence: 99, historySize: 120 },
];

const bench: BenchCase = {
  name: 'analytics-detectors',
  description: 'µs per reading of each detector vs a plain EWMA loop; engine cost; NAB score of auto',
  timeoutMs: 120_000,
  async run(ctx) {
    const n = ctx.quick ? 100_000 : 1_000_000;
    const rounds = ctx.quick ? 3 : 5;
    const values = stream(n);
    const results: BenchResult[] = [];
    // Warm up the JIT on every code path before measuring.
    for (const ref of DETECTORS) timeIt(() => createDetector(ref), values.subarray(0, 50_000));
    timeIt(() => new EwmaLoop(), values.subarray(0, 50_000));
    for (const ref of DETECTORS) {
      const type = typeof ref === 'string' ? ref : ref.type;
      const cost: number[] = [];
      const base: number[] = [];
      for (let r = 0; r < rounds; r++) {
        base.push(timeIt(() => new EwmaLoop(), values));
        cost.push(timeIt(() => createDetector(ref), values));
      }
      const value = median(cost);
      const baseline = median(base);
      ctx.log(`${type}: ${value.toFixed(3)} µs/event (baseline ${baseline.toFixed(3)})`);
      results.push({
        name: `analytics.${type}.cost`,
        value: round(value),
        unit: 'µs/event',
        baseline: round(baseline),
        baselineName: 'analytics.ewma-loop.cost',
        ratio: round(value / baseline),
        target: `<= ${TARGET_US} µs/event`,
        pass: value <= TARGET_US,
        events: n,
      });
    }

    // Auto's worst case: a steady trend (every reading a new extreme: rescales and rebuilds).
    const trend = Float64Array.from({ length: n }, (_, i) => i * 0.5 + (i % 7) * 0.01);
    const trendCost: number[] = [];
    for (let r = 0; r < rounds; r++) trendCost.push(timeIt(() => createDetector('auto'), trend));
    results.push({ name: 'analytics.auto.cost.trend', value: round(median(trendCost)), unit: 'µs/event', target: `<= ${TARGET_US} µs/event`, pass: median(trendCost) <= TARGET_US, events: n });

    // A reading through the whole engine, in batches of 100 as the gateway hands them over.
    const rules = analyticsSchema.parse([
      { name: 'bench', match: 'sensors/+/temp', windows: [{ type: 'tumbling', size: '1m', aggregates: ['count', 'mean', 'max', 'p95'] }] },
    ]);
    const engineCost: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const engine = new AnalyticsEngine(rules, { logger: silentLogger, registry: new Registry(), publishLocal: () => {}, tickMs: 0 });
      const batch: ObservedEvent[] = [];
      let derived = 0;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) {
        batch.push({ seq: i + 1, ts: i * 1000, topic: `sensors/s${i % 10}/temp`, payload: { value: values[i], unit: '°C' }, kind: 'reading' });
        if (batch.length === 100) {
          derived += engine.observe(batch).length;
          batch.length = 0;
        }
      }
      engineCost.push(Number(process.hrtime.bigint() - t0) / 1000 / n);
      engine.close();
      if (derived === 0) ctx.log('engine produced no events (unexpected)');
    }
    results.push({ name: 'analytics.engine.auto+window.cost', value: round(median(engineCost)), unit: 'µs/event', keys: 10, batch: 100, events: n });

    if (existsSync(NAB_DIR) && existsSync(NAB_SCORER)) {
      // The cost of auto on real series (heavy tails make it rescale and rebuild more often).
      const series = nabSeries();
      const nabCost: number[] = [];
      const nabBase: number[] = [];
      for (let r = 0; r < rounds; r++) {
        let ns = 0;
        let nsBase = 0;
        let events = 0;
        for (const v of series) {
          nsBase += timeIt(() => new EwmaLoop(), v) * v.length;
          ns += timeIt(() => createDetector('auto'), v) * v.length;
          events += v.length;
        }
        nabCost.push(ns / events);
        nabBase.push(nsBase / events);
      }
      const value = median(nabCost);
      const baseline = median(nabBase);
      results.push({
        name: 'analytics.auto.cost.nab',
        value: round(value),
        unit: 'µs/event',
        baseline: round(baseline),
        baselineName: 'analytics.ewma-loop.cost.nab',
        ratio: round(value / baseline),
        target: `<= ${TARGET_US} µs/event`,
        pass: value <= TARGET_US,
        files: series.length,
      });
      ctx.log('NAB: replaying 58 series through auto');
      const dir = ctx.tempDir('sluice-nab-');
      const stats = replayCorpus(dir, () => createDetector('auto'));
      const { score } = await scoreCorpus(dir);
      results.push({ name: 'analytics.auto.nab', value: score, unit: 'NAB standard score', target: '>= 65', pass: score >= 65, files: stats.files, events: stats.events });
    }
    return results;
  },
};

/** Every NAB series' values, parsed once. */
function nabSeries(): Float64Array[] {
  const out: Float64Array[] = [];
  for (const category of readdirSync(join(NAB_DIR, 'data'), { withFileTypes: true })) {
    if (!category.isDirectory()) continue;
    for (const file of readdirSync(join(NAB_DIR, 'data', category.name))) {
      if (!file.endsWith('.csv')) continue;
      const lines = readFileSync(join(NAB_DIR, 'data', category.name, file), 'utf8').trim().split('\n').slice(1);
      out.push(Float64Array.from(lines, (l) => Number(l.slice(l.lastIndexOf(',') + 1))));
    }
  }
  return out;
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

export default bench;
