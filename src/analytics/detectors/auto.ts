/**
 * `auto`: the default detector, meant to work with no tuning on any numeric stream.
 *
 * It learns what the stream usually does as short sequences of quantised values (n-grams of
 * value bins) and scores how new the latest sequence is: a value outside anything seen, a level
 * never held, a shape the stream never made. Memory is a fixed hashed count table per key, with
 * counts halved periodically so that the model follows slow drift. After an alarm it stays quiet
 * for a rest period, so one incident is one anomaly, not a storm.
 */
import { type Anomaly, StatefulDetector, unit } from './detector.js';

export interface AutoOptions {
  /** Readings learned before any judgement. */
  warmup: number;
  /** Value bins across the observed range. */
  bins: number;
  /** Longest sequence (n-gram) considered. */
  order: number;
  /** Readings of silence after an alarm. */
  rest: number;
  /** Score from which a reading is reported as an anomaly. */
  threshold: number;
}

export const AUTO_DEFAULTS: AutoOptions = { warmup: 150, bins: 8, order: 4, rest: 150, threshold: 0.75 };

const TABLE_BITS = 12;
const TABLE = 1 << TABLE_BITS;
const HALVE_EVERY = 4096;

interface AutoState {
  n: number;
  lo: number;
  hi: number;
  base: number;
  width: number;
  hist: number[];
  counts: number[];
  sinceAlarm: number;
}

export class AutoDetector extends StatefulDetector<AutoState> {
  readonly type = 'auto';
  private readonly o: AutoOptions;
  private counts: Uint16Array;

  constructor(options: Partial<AutoOptions> = {}) {
    const o = { ...AUTO_DEFAULTS };
    for (const k of Object.keys(o) as (keyof AutoOptions)[]) if (options[k] !== undefined) o[k] = options[k];
    super({ n: 0, lo: Infinity, hi: -Infinity, base: 0, width: 0, hist: [], counts: [], sinceAlarm: 1e9 });
    this.o = o;
    this.counts = new Uint16Array(TABLE);
  }

  process(x: number, _ts: number): Anomaly | null {
    const s = this.state;
    const o = this.o;
    s.n++;
    if (x < s.lo) s.lo = x;
    if (x > s.hi) s.hi = x;
    if (s.n === o.warmup || (s.n > o.warmup && s.hi - s.lo > 2 * s.width * o.bins)) {
      // (Re)scale: bins span the range seen so far.
      s.base = s.lo;
      s.width = (s.hi - s.lo) / o.bins || Math.abs(s.lo) * 1e-3 || 1;
    }
    const bin = s.width > 0 ? Math.floor((x - s.base) / s.width) : 0;
    s.hist.unshift(bin);
    if (s.hist.length > o.order) s.hist.pop();
    let h = 0x811c9dc5;
    let novel = 0;
    let total = 0;
    const counts = this.counts;
    for (let k = 0; k < s.hist.length; k++) {
      h = Math.imul(h ^ (s.hist[k] & 0xffff), 0x01000193) >>> 0;
      const slot = (h ^ (h >>> TABLE_BITS) ^ (k * 0x9e37)) & (TABLE - 1);
      const w = 1;
      total += w;
      if (counts[slot] === 0) novel += w;
      if (counts[slot] < 0xffff) counts[slot]++;
    }
    if (s.n % HALVE_EVERY === 0) for (let i = 0; i < TABLE; i++) counts[i] >>= 1;
    const raw = s.n <= o.warmup || total === 0 ? 0 : novel / total;
    s.sinceAlarm++;
    const score = s.sinceAlarm <= o.rest ? 0 : unit(raw);
    if (raw >= o.threshold) s.sinceAlarm = 0;
    this.lastScore = score;
    if (score < o.threshold) return null;
    return {
      score,
      reason: `value ${x} makes a pattern not seen before`,
      window: { seen: s.n, low: s.lo, high: s.hi },
    };
  }

  override snapshot(): unknown {
    this.state.counts = Array.from(this.counts);
    return super.snapshot();
  }

  override restore(snap: unknown): void {
    super.restore(snap);
    const c = this.state.counts;
    this.counts = new Uint16Array(TABLE);
    if (c.length === TABLE) this.counts.set(c);
  }
}
