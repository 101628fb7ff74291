/**
 * Several detectors judged as one (e.g. `auto` with `changePoint: true`): each sees every reading,
 * the score is the highest, and an anomaly is reported when any of them reports one (the first, by
 * order). Keeps the first detector's type, so events and metrics name the configured detector.
 */
import type { Anomaly, Detector } from './detector.js';

export class CombinedDetector implements Detector {
  readonly type: string;
  lastScore = 0;

  constructor(private readonly parts: Detector[]) {
    if (parts.length === 0) throw new Error('a combined detector needs at least one detector');
    this.type = parts[0].type;
  }

  process(value: number, ts: number): Anomaly | null {
    let found: Anomaly | null = null;
    this.lastScore = 0;
    for (const d of this.parts) {
      const a = d.process(value, ts);
      found ??= a;
      if (d.lastScore > this.lastScore) this.lastScore = d.lastScore;
    }
    return found;
  }

  tick(now: number): Anomaly | null {
    let found: Anomaly | null = null;
    for (const d of this.parts) found ??= d.tick?.(now) ?? null;
    return found;
  }

  resume(): void {
    for (const d of this.parts) d.resume?.();
  }

  snapshot(): unknown {
    return { type: 'combined', parts: this.parts.map((d) => d.snapshot()) };
  }

  restore(snap: unknown): void {
    const s = snap as { type?: unknown; parts?: unknown } | null;
    if (s?.type !== 'combined' || !Array.isArray(s.parts) || s.parts.length !== this.parts.length) {
      throw new Error(`snapshot is not a combined ${this.type} detector's state`);
    }
    this.parts.forEach((d, i) => d.restore((s.parts as unknown[])[i]));
  }
}
