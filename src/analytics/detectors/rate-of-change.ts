/**
 * `rate-of-change`: the value moved faster than allowed since the previous reading, either per
 * second (`maxRate`, using the readings' timestamps) or per reading (`maxDelta`).
 */
import { type Anomaly, excessScore, StatefulDetector } from './detector.js';

export interface RateOfChangeOptions {
  maxRate?: number;
  maxDelta?: number;
}

export class RateOfChangeDetector extends StatefulDetector<{ has: number; prev: number; prevTs: number }> {
  readonly type = 'rate-of-change';

  constructor(private readonly o: RateOfChangeOptions) {
    super({ has: 0, prev: 0, prevTs: 0 });
  }

  process(x: number, ts: number): Anomaly | null {
    const s = this.state;
    let anomaly: Anomaly | null = null;
    this.lastScore = 0;
    if (s.has) {
      const delta = x - s.prev;
      const dt = (ts - s.prevTs) / 1000;
      const { maxDelta, maxRate } = this.o;
      if (maxDelta !== undefined && Math.abs(delta) > maxDelta) {
        this.lastScore = excessScore(Math.abs(delta) - maxDelta, maxDelta);
        anomaly = {
          score: this.lastScore,
          reason: `value changed by ${round(delta)} in one reading (limit ${maxDelta})`,
          window: { previous: s.prev, delta },
        };
      } else if (maxRate !== undefined && dt > 0 && Math.abs(delta / dt) > maxRate) {
        const rate = delta / dt;
        this.lastScore = excessScore(Math.abs(rate) - maxRate, maxRate);
        anomaly = {
          score: this.lastScore,
          reason: `value changed at ${round(rate)}/s (limit ${maxRate}/s)`,
          window: { previous: s.prev, seconds: dt, rate },
        };
      }
    }
    s.has = 1;
    s.prev = x;
    s.prevTs = ts;
    return anomaly;
  }
}

function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
