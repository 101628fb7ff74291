/**
 * `change-point`: the counterpart of Azure Stream Analytics' AnomalyDetection_ChangePoint, a
 * persistent shift of the level. A two-sided CUSUM (Page 1954) on readings standardised against the
 * last `historySize` readings before the shift; the decision limit comes from `confidence` (one false
 * alarm per historySize / (1 − confidence) readings of stable data). After a
 * change the baseline is relearned, so a new level is reported once.
 */
import { type Anomaly, excessScore, StatefulDetector } from './detector.js';

export interface ChangePointOptions {
  confidence: number;
  historySize: number;
}

interface CpState {
  ring: number[];
  head: number;
  /** Sums are kept relative to `ref` (the first value of the baseline): no cancellation at 1e9 ± 0.1. */
  ref: number;
  /** Readings since the sums were last recomputed from the ring (add/subtract drift). */
  since: number;
  sum: number;
  sumSq: number;
  hi: number;
  lo: number;
}

/** CUSUM allowance, in σ: shifts smaller than this are not accumulated. */
const K = 0.5;

export class ChangePointDetector extends StatefulDetector<CpState> {
  readonly type = 'change-point';
  private readonly h: number;

  constructor(private readonly o: ChangePointOptions) {
    super({ ring: [], head: 0, ref: 0, since: 0, sum: 0, sumSq: 0, hi: 0, lo: 0 });
    // Decision limit from the in-control run length wanted: one false alarm per historySize/(1 − c)
    // readings (c = 99 %, 120 readings: one per 12,000), by Siegmund's approximation of the CUSUM's
    // ARL for k = 0.5 (two-sided: each side gets twice that run length).
    const arl = o.historySize / (1 - o.confidence / 100);
    this.h = Math.max(1, Math.log(2 * arl) - 1.166);
  }

  process(x: number): Anomaly | null {
    const s = this.state;
    const n = s.ring.length;
    const warm = Math.max(8, this.o.historySize >> 2);
    let anomaly: Anomaly | null = null;
    this.lastScore = 0;
    if (n >= warm) {
      const dm = s.sum / n;
      const mean = s.ref + dm;
      const sigma = Math.sqrt(Math.max(0, s.sumSq / n - dm * dm)) || Math.max(Math.abs(mean) * 1e-3, 1e-9);
      const u = (x - mean) / sigma;
      s.hi = Math.max(0, s.hi + u - K);
      s.lo = Math.max(0, s.lo - u - K);
      const cusum = Math.max(s.hi, s.lo);
      this.lastScore = cusum > this.h ? excessScore(cusum - this.h, this.h) : (0.5 * cusum) / this.h;
      if (cusum > this.h) {
        anomaly = {
          score: this.lastScore,
          reason: `level shifted ${s.hi > s.lo ? 'up' : 'down'} from ${round(mean)} (CUSUM ${cusum.toFixed(1)}σ > ${this.h.toFixed(1)}σ)`,
          window: { size: n, mean, sigma, cusum },
        };
        // Relearn the baseline from the new level on.
        s.ring = [];
        s.head = 0;
        s.sum = 0;
        s.sumSq = 0;
        s.hi = 0;
        s.lo = 0;
      }
    }
    if (s.ring.length === 0) s.ref = x;
    if (s.ring.length < this.o.historySize) {
      s.ring.push(x);
    } else {
      const old = s.ring[s.head] - s.ref;
      s.sum -= old;
      s.sumSq -= old * old;
      s.ring[s.head] = x;
      s.head = (s.head + 1) % this.o.historySize;
    }
    const d = x - s.ref;
    s.sum += d;
    s.sumSq += d * d;
    if (++s.since >= this.o.historySize) this.resum();
    return anomaly;
  }

  /** Recomputes the sums from the ring, re-centred on its mean, so rounding never accumulates. */
  private resum(): void {
    const s = this.state;
    s.since = 0;
    if (s.ring.length === 0) return;
    s.ref = s.ring.reduce((a, b) => a + b, 0) / s.ring.length;
    s.sum = 0;
    s.sumSq = 0;
    for (const v of s.ring) {
      const d = v - s.ref;
      s.sum += d;
      s.sumSq += d * d;
    }
  }
}

function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
