/**
 * A Prometheus histogram cheap enough for the hot path: `observe` is a short loop over a fixed
 * bucket array and two additions (no label hashing, no allocation), unlike prom-client's Histogram,
 * which builds a label key per observation. It registers on a prom-client Registry as a metric
 * whose values are built only when scraped. `observe(v, n)` counts n observations of v at once (a
 * batch of publishes made durable together).
 *
 * One optional label: `child(value)` returns the series for that label value, made once and kept
 * (the caller keeps the reference; `remove(value)` drops a series, e.g. when an uplink is removed).
 */
import type { Registry } from 'prom-client';

export class Series {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(value: number, n = 1): void {
    const b = this.bounds;
    // Non-cumulative here (one increment); made cumulative at scrape time.
    for (let i = 0; i < b.length; i++) {
      if (value <= b[i]) {
        this.counts[i] += n;
        break;
      }
    }
    this.sum += value * n;
    this.count += n;
  }
}

interface MetricValue {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

export class FastHistogram extends Series {
  private readonly children = new Map<string, Series>();
  readonly type = 'histogram';

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: readonly number[],
    private readonly labelName?: string,
  ) {
    super(buckets);
  }

  /** Registers on `registry`, or returns the histogram already registered under this name. */
  static on(registry: Registry, name: string, help: string, buckets: readonly number[], labelName?: string): FastHistogram {
    const existing = registry.getSingleMetric(name) as unknown;
    if (existing instanceof FastHistogram) return existing;
    const h = new FastHistogram(name, help, buckets, labelName);
    registry.registerMetric(h as never);
    return h;
  }

  child(value: string): Series {
    let s = this.children.get(value);
    if (!s) {
      s = new Series(this.buckets);
      this.children.set(value, s);
    }
    return s;
  }

  /** Drops the series of `value` (only `series` when given: a successor may have taken it over). */
  remove(value: string, series?: Series): void {
    if (!series || this.children.get(value) === series) this.children.delete(value);
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
    this.children.clear();
  }

  /** What prom-client's Registry formats. */
  get(): { name: string; help: string; type: string; values: MetricValue[]; aggregator: string } {
    const values: MetricValue[] = [];
    if (this.labelName) {
      for (const [v, s] of this.children) this.valuesOf(s, { [this.labelName]: v }, values);
    } else {
      this.valuesOf(this, {}, values);
    }
    return { name: this.name, help: this.help, type: 'histogram', values, aggregator: 'sum' };
  }

  private valuesOf(s: Series, labels: Record<string, string>, out: MetricValue[]): void {
    let cumulative = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      cumulative += s.counts[i];
      out.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: this.buckets[i] }, value: cumulative });
    }
    out.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: '+Inf' }, value: s.count });
    out.push({ metricName: `${this.name}_sum`, labels, value: s.sum });
    out.push({ metricName: `${this.name}_count`, labels, value: s.count });
  }
}

/** Seconds, 100 µs to 10 s: durable-commit and acknowledgement latencies. */
export const FAST_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];
/** Seconds, 1 ms to 60 s: network round trips. */
export const NETWORK_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
