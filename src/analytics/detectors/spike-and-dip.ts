/**
 * `spike-and-dip`: the counterpart of Azure Stream Analytics' AnomalyDetection_SpikeAndDip. Over the
 * last `historySize` readings it estimates how improbable the new reading is (a robust normal
 * p-value, two-sided for `spikesanddips`) and flags it when that improbability exceeds `confidence`
 * percent and the reading leaves the range the history held. Score = 1 − p.
 */
import { normalQuantile, normalTail } from '../stats/normal.js';
import type { Anomaly } from './detector.js';
import { RobustZScoreDetector, round } from './zscore.js';

export interface SpikeAndDipOptions {
  confidence: number;
  historySize: number;
  mode: 'spikes' | 'dips' | 'spikesanddips';
}

export class SpikeAndDipDetector extends RobustZScoreDetector {
  override readonly type = 'spike-and-dip';

  constructor(private readonly sd: SpikeAndDipOptions) {
    super({
      window: sd.historySize,
      warmup: Math.min(sd.historySize, Math.max(8, sd.historySize >> 3)),
      threshold: normalQuantile(sd.confidence / 100),
    });
  }

  override process(x: number): Anomaly | null {
    const { z, median, sigma } = this.z(x);
    const lo = this.win.size ? this.win.min() : Number.NaN;
    const hi = this.win.size ? this.win.max() : Number.NaN;
    this.win.push(x);
    if (Number.isNaN(z)) {
      this.lastScore = 0;
      return null;
    }
    const mode = this.sd.mode;
    const up = mode !== 'dips' && z > 0;
    const down = mode !== 'spikes' && z < 0;
    const p = up || down ? (mode === 'spikesanddips' ? 2 : 1) * normalTail(Math.abs(z)) : 1;
    this.lastScore = Math.max(0, 1 - p);
    const beyond = (up && x > hi) || (down && x < lo);
    if (!(this.lastScore * 100 >= this.sd.confidence) || !beyond) return null;
    return {
      score: this.lastScore,
      reason: `${up ? 'spike' : 'dip'}: value ${x} against a median of ${round(median)} over the last ${this.win.size - 1} readings (p = ${p.toExponential(1)})`,
      window: { size: this.win.size - 1, median, sigma, min: lo, max: hi },
    };
  }
}
