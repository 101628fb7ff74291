/**
 * `ewma`: an EWMA control chart (Roberts 1959). The baseline mean and σ are learned over `warmup`
 * readings and then follow the in-control data slowly; the smoothed statistic
 * z = λx + (1 − λ)z is out of control beyond μ ± L·σ·√(λ/(2 − λ)). Small λ catches small
 * sustained shifts, large λ behaves like a Shewhart chart. Edge-triggered: one anomaly per excursion.
 */
import { type Anomaly, excessScore, StatefulDetector } from './detector.js';

export interface EwmaOptions {
  lambda: number;
  limit: number;
  warmup: number;
}

interface EwmaState {
  n: number;
  mean: number;
  m2: number;
  z: number;
  out: number;
}

/** How fast the baseline follows in-control data, once learned. */
const BASELINE_ALPHA = 0.001;

export class EwmaDetector extends StatefulDetector<EwmaState> {
  readonly type = 'ewma';

  constructor(private readonly o: EwmaOptions) {
    super({ n: 0, mean: 0, m2: 0, z: 0, out: 0 });
  }

  process(x: number): Anomaly | null {
    const s = this.state;
    const { lambda, limit, warmup } = this.o;
    s.n++;
    if (s.n <= warmup) {
      // Welford over the warm-up.
      const d = x - s.mean;
      s.mean += d / s.n;
      s.m2 += d * (x - s.mean);
      s.z = s.mean;
      this.lastScore = 0;
      return null;
    }
    const variance = s.n - 1 > 1 ? s.m2 / Math.min(s.n - 1, warmup - 1 || 1) : 0;
    const sigma = Math.sqrt(variance) || Math.max(Math.abs(s.mean) * 1e-3, 1e-9);
    s.z = lambda * x + (1 - lambda) * s.z;
    const band = limit * sigma * Math.sqrt(lambda / (2 - lambda));
    const dev = s.z - s.mean;
    const out = Math.abs(dev) > band;
    if (!out) {
      // In control: let the baseline drift with the process (EW mean and variance).
      const d = x - s.mean;
      s.mean += BASELINE_ALPHA * d;
      s.m2 = (1 - BASELINE_ALPHA) * (s.m2 + BASELINE_ALPHA * d * d * (warmup - 1 || 1));
      this.lastScore = (0.5 * Math.abs(dev)) / band;
      s.out = 0;
      return null;
    }
    this.lastScore = excessScore(Math.abs(dev) - band, band);
    if (s.out) return null;
    s.out = 1;
    return {
      score: this.lastScore,
      reason: `EWMA ${round(s.z)} is ${dev > 0 ? 'above' : 'below'} the control limit ${round(s.mean + Math.sign(dev) * band)}`,
      window: { mean: s.mean, sigma, ewma: s.z, lambda, limit },
    };
  }
}

function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
