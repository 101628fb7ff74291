/**
 * The aggregates of one window in O(1) memory per aggregate: count, sum, min, max, mean and stddev
 * (Welford, sample σ), rate (readings per second of the window's span), last, and pNN percentiles
 * by P² (bounded memory, approximate beyond five values).
 */
import { P2Quantile } from '../stats/p2.js';

export class Accumulator {
  count = 0;
  sum = 0;
  min = Infinity;
  max = -Infinity;
  mean = 0;
  m2 = 0;
  last = Number.NaN;
  lastT = -Infinity;
  private readonly quantiles: P2Quantile[];

  constructor(private readonly aggregates: readonly string[]) {
    this.quantiles = aggregates.filter((a) => a[0] === 'p').map((a) => new P2Quantile(Number(a.slice(1)) / 100));
  }

  add(x: number, t: number): void {
    this.count++;
    this.sum += x;
    if (x < this.min) this.min = x;
    if (x > this.max) this.max = x;
    const d = x - this.mean;
    this.mean += d / this.count;
    this.m2 += d * (x - this.mean);
    // `last` follows event time, so a late reading does not become the window's last value.
    if (t >= this.lastT) {
      this.last = x;
      this.lastT = t;
    }
    for (const q of this.quantiles) q.add(x);
  }

  /** The configured aggregates, keyed by name; `spanMs` is the window's length (for `rate`). */
  result(spanMs: number): Record<string, number> {
    const out: Record<string, number> = {};
    let qi = 0;
    for (const a of this.aggregates) {
      switch (a) {
        case 'count':
          out.count = this.count;
          break;
        case 'sum':
          out.sum = this.sum;
          break;
        case 'min':
          out.min = this.min;
          break;
        case 'max':
          out.max = this.max;
          break;
        case 'mean':
          out.mean = this.mean;
          break;
        case 'stddev':
          out.stddev = this.count > 1 ? Math.sqrt(this.m2 / (this.count - 1)) : 0;
          break;
        case 'rate':
          out.rate = spanMs > 0 ? this.count / (spanMs / 1000) : 0;
          break;
        case 'last':
          out.last = this.last;
          break;
        default:
          out[a] = this.quantiles[qi++].value();
      }
    }
    return out;
  }
}

/** Exact aggregates over a list of values (sliding windows, which hold their readings anyway). */
export function aggregateValues(
  values: readonly number[],
  aggregates: readonly string[],
  spanMs: number,
  last: number,
): Record<string, number> {
  const acc = new Accumulator([]);
  for (const v of values) acc.add(v, 0);
  const out: Record<string, number> = {};
  let sorted: number[] | undefined;
  for (const a of aggregates) {
    if (a[0] === 'p') {
      sorted ??= [...values].sort((x, y) => x - y);
      out[a] = quantileOfSorted(sorted, Number(a.slice(1)) / 100);
    } else if (a === 'last') {
      out.last = last;
    } else {
      Object.assign(out, accumulate(acc, a, spanMs));
    }
  }
  return out;
}

function accumulate(acc: Accumulator, a: string, spanMs: number): Record<string, number> {
  const tmp = new Accumulator([a]);
  Object.assign(tmp, { count: acc.count, sum: acc.sum, min: acc.min, max: acc.max, mean: acc.mean, m2: acc.m2 });
  return tmp.result(spanMs);
}

/** Linear interpolation between closest ranks (numpy's default). */
export function quantileOfSorted(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const h = (sorted.length - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}
