/**
 * The Detector contract. A detector watches one numeric stream (one key of one rule) and judges each
 * reading as it arrives.
 *
 * Guarantees every implementation keeps:
 * - `process(value, ts)` is synchronous, O(1) or O(window) with a small bounded window, never
 *   allocates without bound: the state per key has a fixed ceiling whatever the stream does.
 * - It is streaming: a judgement uses only the readings already seen, never later ones.
 * - It returns an `Anomaly` only when the reading is anomalous, else null; `lastScore` always holds
 *   the continuous score in [0, 1] of the last reading (what `sluice detect` writes for tuning).
 * - `tick(now)` lets detectors that watch for absence (gap) fire without a reading; others omit it.
 * - `snapshot()` returns plain JSON-able data and `restore()` takes it back, so state can survive a
 *   restart or a hot reload; restore of foreign or damaged data throws and leaves the detector fresh.
 */
export interface Anomaly {
  /** Confidence in [0, 1]. */
  score: number;
  /** One sentence a person can act on. */
  reason: string;
  /** What the detector saw around the reading (window size, baseline, limits): detector specific. */
  window?: Record<string, number>;
}

export interface Detector {
  readonly type: string;
  /** Score of the last reading processed, in [0, 1]. */
  readonly lastScore: number;
  process(value: number, ts: number): Anomaly | null;
  tick?(now: number): Anomaly | null;
  /**
   * After a restore across a restart: the time since the last reading is the gateway's own
   * downtime, not the sensor's silence; detectors that measure intervals forget the last one.
   */
  resume?(): void;
  snapshot(): unknown;
  restore(state: unknown): void;
}

/**
 * Base for detectors whose whole state lives in one plain `state` object of numbers and number
 * arrays: snapshot and restore come for free and stay in step with the fields.
 */
export abstract class StatefulDetector<S extends object> implements Detector {
  abstract readonly type: string;
  lastScore = 0;
  protected state: S;

  constructor(initial: S) {
    this.state = initial;
  }

  abstract process(value: number, ts: number): Anomaly | null;

  snapshot(): unknown {
    return { type: this.type, state: structuredClone(this.state) };
  }

  restore(snap: unknown): void {
    const s = snap as { type?: unknown; state?: unknown } | null;
    if (!s || s.type !== this.type || typeof s.state !== 'object' || s.state === null) {
      throw new Error(`snapshot is not a ${this.type} detector's state`);
    }
    const fresh = this.state as Record<string, unknown>;
    const next = s.state as Record<string, unknown>;
    for (const k of Object.keys(fresh)) {
      if (typeof fresh[k] !== typeof next[k] || Array.isArray(fresh[k]) !== Array.isArray(next[k])) {
        throw new Error(`snapshot of ${this.type} has a bad "${k}"`);
      }
    }
    this.state = structuredClone(next) as S;
  }
}

/** Clamps into [0, 1]; NaN becomes 0. */
export function unit(x: number): number {
  // biome-ignore lint/complexity/useMathMinMax: Math.max(NaN, 0) is NaN; this maps NaN to 0.
  return x > 1 ? 1 : x > 0 ? x : 0;
}

/** Maps an unbounded excess (0 at the limit) onto a score in [0.5, 1): at the limit 0.5, far beyond it 1. */
export function excessScore(excess: number, scale: number): number {
  if (!(excess > 0)) return 0.5;
  return 0.5 + 0.5 * (1 - Math.exp(-excess / (scale > 0 ? scale : 1)));
}
