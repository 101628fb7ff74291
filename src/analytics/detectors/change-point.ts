/**
 * `change-point`: the counterpart of Azure Stream Analytics' AnomalyDetection_ChangePoint, a
 * persistent shift of the level. A two-sided CUSUM (Page 1954) on readings standardised against the
 * last `historySize` readings before the shift; the decision limit comes from `confidence`. After a
 * change the baseline is relearned, so a new level is reported once.
 */
import { normalQuantile } from '../stats/normal.js';
import { type Anomaly, excessScore, StatefulDetector } from './detector.js';

export interface ChangePointOptions {
  confidence: number;
  historySize: number;
}

interface CpState {
  ring: number[];
  head: number;
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
    super({ ring: [], head: 0, sum: 0, sumSq: 0, hi: 0, lo: 0 });
    this.h = 2 * normalQuantile(o.confidence / 100);
  }

  process(x: number): Anomaly | null {
    const s = this.state;
    const n = s.ring.length;
    const warm = Math.max(8, this.o.historySize >> 2);
    let anomaly: Anomaly | null = null;
    this.lastScore = 0;
    if (n >= warm) {
      const mean = s.sum / n;
      const sigma = Math.sqrt(Math.max(0, s.sumSq / n - mean * mean)) || Math.max(Math.abs(mean) * 1e-3, 1e-9);
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
    if (s.ring.length < this.o.historySize) {
      s.ring.push(x);
    } else {
      const old = s.ring[s.head];
      s.sum -= old;
      s.sumSq -= old * old;
      s.ring[s.head] = x;
      s.head = (s.head + 1) % this.o.historySize;
    }
    s.sum += x;
    s.sumSq += x * x;
    return anomaly;
  }
}

function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
