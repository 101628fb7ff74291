/**
 * `gap`: a sensor that stopped reporting. The expected interval is `interval` when configured, else
 * learned as a slow average of the observed intervals. `tick(now)` (the engine calls it every second)
 * fires once when no reading came for `factor` × the interval; in offline replay, where no clock
 * ticks, the reading that ends such a gap is flagged instead. Re-arms on the next reading.
 */
import { type Anomaly, excessScore, StatefulDetector } from './detector.js';

export interface GapOptions {
  interval?: number;
  factor: number;
}

interface GapState {
  seen: number;
  lastTs: number;
  learned: number;
  intervals: number;
  fired: number;
}

export class GapDetector extends StatefulDetector<GapState> {
  readonly type = 'gap';

  constructor(private readonly o: GapOptions) {
    super({ seen: 0, lastTs: 0, learned: 0, intervals: 0, fired: 0 });
  }

  private expected(): number {
    return this.o.interval ?? (this.state.intervals >= 3 ? this.state.learned : 0);
  }

  process(_x: number, ts: number): Anomaly | null {
    const s = this.state;
    let anomaly: Anomaly | null = null;
    this.lastScore = 0;
    if (s.seen) {
      const dt = ts - s.lastTs;
      const expected = this.expected();
      if (expected > 0 && dt > this.o.factor * expected && !s.fired) {
        anomaly = this.gap(dt, expected);
      } else if (dt > 0 && !(expected > 0 && dt > this.o.factor * expected)) {
        // Only normal intervals teach the expected one: a gap must not teach that gaps are normal.
        s.learned = s.intervals === 0 ? dt : s.learned + (dt - s.learned) * 0.05;
        s.intervals++;
      }
    }
    s.seen = 1;
    s.lastTs = ts;
    s.fired = 0;
    return anomaly;
  }

  resume(): void {
    this.state.seen = 0;
  }

  tick(now: number): Anomaly | null {
    const s = this.state;
    const expected = this.expected();
    if (s.fired || !s.seen || !(expected > 0)) return null;
    const dt = now - s.lastTs;
    if (dt <= this.o.factor * expected) return null;
    s.fired = 1;
    return this.gap(dt, expected);
  }

  private gap(dt: number, expected: number): Anomaly {
    this.lastScore = excessScore(dt - this.o.factor * expected, expected * this.o.factor);
    return {
      score: this.lastScore,
      reason: `no reading for ${(dt / 1000).toFixed(1)} s (expected every ${(expected / 1000).toFixed(1)} s)`,
      window: { silentSeconds: dt / 1000, expectedSeconds: expected / 1000, factor: this.o.factor },
    };
  }
}
