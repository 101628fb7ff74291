/**
 * `flatline`: a stuck sensor, `count` consecutive readings (and, with `duration`, at least that long)
 * within `tolerance` of the first of them. Fires once, on the reading that completes the run, and
 * re-arms when the value moves again.
 */
import { type Anomaly, StatefulDetector } from './detector.js';

export interface FlatlineOptions {
  count: number;
  tolerance: number;
  duration?: number;
}

export class FlatlineDetector extends StatefulDetector<{ run: number; ref: number; since: number; fired: number }> {
  readonly type = 'flatline';

  constructor(private readonly o: FlatlineOptions) {
    super({ run: 0, ref: 0, since: 0, fired: 0 });
  }

  process(x: number, ts: number): Anomaly | null {
    const s = this.state;
    const { count, tolerance, duration } = this.o;
    if (s.run > 0 && Math.abs(x - s.ref) <= tolerance) {
      s.run++;
    } else {
      s.run = 1;
      s.ref = x;
      s.since = ts;
      s.fired = 0;
    }
    const stuck = s.run >= count && (duration === undefined || ts - s.since >= duration);
    this.lastScore = stuck ? Math.min(1, 0.5 + (0.5 * (s.run - count + 1)) / count) : 0;
    if (!stuck || s.fired) return null;
    s.fired = 1;
    return {
      score: this.lastScore,
      reason: `value stuck at ${s.ref} for ${s.run} readings (${Math.round((ts - s.since) / 1000)} s)`,
      window: { readings: s.run, seconds: (ts - s.since) / 1000, tolerance },
    };
  }
}
