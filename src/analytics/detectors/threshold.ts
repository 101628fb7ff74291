/**
 * `threshold`: a reading above `high` or below `low`. With `hysteresis`, the alarm clears only once
 * the value is back inside by that margin, so a value hovering at the limit raises one anomaly, not
 * one per reading. Edge-triggered: one anomaly per excursion.
 */
import { type Anomaly, excessScore, StatefulDetector } from './detector.js';

export interface ThresholdOptions {
  high?: number;
  low?: number;
  hysteresis: number;
}

export class ThresholdDetector extends StatefulDetector<{ alarm: number }> {
  readonly type = 'threshold';

  constructor(private readonly o: ThresholdOptions) {
    super({ alarm: 0 });
  }

  process(x: number): Anomaly | null {
    const { high, low, hysteresis } = this.o;
    const s = this.state;
    const scale = hysteresis > 0 ? hysteresis : Math.max(Math.abs(high ?? low ?? 1) * 0.1, 1e-9);
    let score = 0;
    let reason = '';
    let limit = 0;
    if (high !== undefined && x > high) {
      score = excessScore(x - high, scale);
      if (s.alarm !== 1) reason = `value ${x} is above the high limit ${high}`;
      s.alarm = 1;
      limit = high;
    } else if (low !== undefined && x < low) {
      score = excessScore(low - x, scale);
      if (s.alarm !== -1) reason = `value ${x} is below the low limit ${low}`;
      s.alarm = -1;
      limit = low;
    } else if (s.alarm === 1 && high !== undefined && x <= high - hysteresis) {
      s.alarm = 0;
    } else if (s.alarm === -1 && low !== undefined && x >= low + hysteresis) {
      s.alarm = 0;
    }
    this.lastScore = score;
    return reason ? { score, reason, window: { limit, hysteresis } } : null;
  }
}
