/**
 * `zscore`: robust z-score, the distance of a reading from the median of the last `window`
 * readings in units of their MAD (scaled to σ for normal data). Resistant to the outliers it
 * looks for, unlike a mean/σ z-score. Fires when |z| exceeds `threshold` (3.5 by Iglewicz and
 * Hoaglin's rule), after `warmup` readings.
 */
import { SortedWindow } from '../stats/sorted-window.js';
import { type Anomaly, type Detector, excessScore } from './detector.js';

export interface ZScoreOptions {
  window: number;
  threshold: number;
  warmup: number;
}

/** MAD × 1.4826 estimates σ of normal data. */
const MAD_TO_SIGMA = 1.4826;

export class RobustZScoreDetector implements Detector {
  readonly type: string = 'zscore';
  lastScore = 0;
  protected readonly win: SortedWindow;

  constructor(protected readonly o: ZScoreOptions) {
    this.win = new SortedWindow(o.window);
  }

  /** z of x against the window, or NaN before warm-up. */
  protected z(x: number): { z: number; median: number; sigma: number } {
    if (this.win.size < Math.max(3, this.o.warmup)) return { z: Number.NaN, median: Number.NaN, sigma: Number.NaN };
    const median = this.win.median();
    let sigma = this.win.mad(median) * MAD_TO_SIGMA;
    // More than half the window equal: fall back to a fraction of the range, then to the scale of
    // the value itself, so a constant stream still notices a change.
    if (!(sigma > 0)) sigma = (this.win.max() - this.win.min()) / 6;
    if (!(sigma > 0)) sigma = Math.max(Math.abs(median) * 1e-3, 1e-9);
    return { z: (x - median) / sigma, median, sigma };
  }

  process(x: number): Anomaly | null {
    const { z, median, sigma } = this.z(x);
    this.win.push(x);
    const t = this.o.threshold;
    if (!(Math.abs(z) > t)) {
      this.lastScore = Number.isNaN(z) ? 0 : (0.5 * Math.abs(z)) / t;
      return null;
    }
    this.lastScore = excessScore(Math.abs(z) - t, t);
    return {
      score: this.lastScore,
      reason: `value ${x} is ${Math.abs(z).toFixed(1)} robust standard deviations ${z > 0 ? 'above' : 'below'} the median ${round(median)}`,
      window: { size: this.win.size, median, sigma, z },
    };
  }

  snapshot(): unknown {
    return { type: this.type, values: this.win.values() };
  }

  restore(snap: unknown): void {
    const s = snap as { type?: unknown; values?: unknown } | null;
    if (!s || s.type !== this.type || !Array.isArray(s.values) || !s.values.every((v) => typeof v === 'number')) {
      throw new Error(`snapshot is not a ${this.type} detector's state`);
    }
    this.win.clear();
    for (const v of s.values as number[]) this.win.push(v);
  }
}

export function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
