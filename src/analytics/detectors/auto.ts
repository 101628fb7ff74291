/**
 * `auto`: the default detector, meant to work with no tuning on any numeric stream.
 *
 * It quantises the stream into `bins` equal bins spanning the range seen so far and flags what the
 * stream never did before (or not lately):
 * - a reading beyond the range seen (scored by how far beyond, relative to the range),
 * - a reading in a bin never visited (a level never held),
 * - a stay in one bin longer than twice any stay there before (a pattern that stopped),
 * - the exact same value repeated more than twice as often as any repeat lately (a stuck sensor),
 * - from the clock (`tick`), a silence over 3× the longest interval between readings lately.
 * When the range grows, the bins are rescaled (with 2 % head room) and the per-bin history is
 * rebuilt from the recent readings it keeps (a fixed ring), so what was learned survives the
 * rescale; every `memory` readings the range is re-read from that ring, so one old glitch does not
 * blind it forever. After an alarm it stays quiet for `rest` readings: one incident, one anomaly;
 * a stream that keeps alarming as soon as a rest ends (a drift, a restless source) gets doubling
 * rests, up to `memory` readings, back to `rest` once it calms down.
 * Memory is fixed per key: the ring plus a few numbers per bin. One parameter set, chosen on the
 * Numenta Anomaly Benchmark for the general case and flat around it (see test/nab/).
 */
import { type Anomaly, StatefulDetector } from './detector.js';

export interface AutoOptions {
  /** Readings learned before any judgement. */
  warmup: number;
  /** Value bins across the observed range. */
  bins: number;
  /** Readings of silence after an alarm. */
  rest: number;
  /** Score from which a reading is reported as an anomaly. */
  threshold: number;
  /** Recent readings kept to rebuild the model after a rescale. */
  memory: number;
  /** A stay in a bin is unusual beyond this multiple of the longest stay seen there. */
  runFactor: number;
  /** Score of a reading just beyond the range; it rises to 1 at `growthSpan` × range beyond. */
  growthBase: number;
  growthSpan: number;
  /** Score of an unusually long stay. */
  runScore: number;
  /** Score of a reading in a bin never visited. */
  newBinScore: number;
  /** A value repeated exactly this many times, and more than twice the longest repeat seen lately, is stuck. */
  stuckMin: number;
  stuckScore: number;
  /** Silence longer than this multiple of the longest interval seen lately is a dropout (found by tick()). */
  gapFactor: number;
  /** Every `memory` readings, the range is re-read from the ring when it shrank below this share. */
  forget: number;
  /** Head room of the bins beyond the range seen, as a share of it: a slowly growing range rescales rarely. */
  margin: number;
}

export const AUTO_DEFAULTS: AutoOptions = {
  warmup: 150,
  bins: 7,
  rest: 30,
  threshold: 0.55,
  memory: 2048,
  runFactor: 2,
  growthBase: 0.5,
  growthSpan: 0.1,
  runScore: 0.6,
  newBinScore: 1,
  stuckMin: 5,
  stuckScore: 0.6,
  gapFactor: 3,
  forget: 0.5,
  margin: 0.02,
};

/** An alarm within this multiple of the rest period after the last one doubles the next rest. */
const BACKOFF_WINDOW = 1.5;

interface AutoState {
  n: number;
  lo: number;
  hi: number;
  base: number;
  width: number;
  sinceAlarm: number;
  run: number;
  runBin: number;
  /** Longest stay in the current bin before the current stay began. */
  runRef: number;
  /** Exact repeats: the current run of equal readings, and the longest runs of this and the previous period. */
  eq: number;
  eqValue: number;
  eqMax: number;
  eqMaxPrev: number;
  /** Silence: the last reading's time, the longest intervals of this and the previous period. */
  lastTs: number;
  gapMax: number;
  gapMaxPrev: number;
  gapFired: number;
  /** Set by resume(): the next interval spans a restart and is not measured. */
  paused: number;
  /** The current rest period: doubles while alarms keep coming soon after the rest ends (backoff). */
  restNow: number;
}

export class AutoDetector extends StatefulDetector<AutoState> {
  readonly type = 'auto';
  private readonly o: AutoOptions;
  private ring: Float64Array;
  /** Per bin (index bin + 1, the two ends catch out-of-range bins): readings seen, longest stay. */
  private counts: Float64Array;
  private runs: Float64Array;

  constructor(options: Partial<AutoOptions> = {}) {
    const o = { ...AUTO_DEFAULTS };
    for (const k of Object.keys(o) as (keyof AutoOptions)[]) if (options[k] !== undefined) o[k] = options[k];
    super({
      n: 0,
      lo: Infinity,
      hi: -Infinity,
      base: 0,
      width: 0,
      sinceAlarm: 1e9,
      run: 0,
      runBin: -99,
      runRef: 0,
      eq: 0,
      eqValue: 0,
      eqMax: 0,
      eqMaxPrev: 0,
      lastTs: 0,
      gapMax: 0,
      gapMaxPrev: 0,
      gapFired: 0,
      paused: 0,
      restNow: 0,
    });
    this.o = o;
    this.ring = new Float64Array(o.memory);
    this.counts = new Float64Array(o.bins + 2);
    this.runs = new Float64Array(o.bins + 2);
  }

  private slot(x: number): number {
    const s = this.state;
    const b = s.width > 0 ? Math.floor((x - s.base) / s.width) : 0;
    return b < 0 ? 0 : b >= this.o.bins ? this.o.bins + 1 : b + 1;
  }

  /**
   * Counts a reading in its bin and extends the current stay; returns the stay's length as a multiple
   * of the longest stay in that bin before it began, on the one reading where it crosses
   * `runFactor` (0 otherwise): a long stay is reported once, when it becomes unusual.
   */
  private learn(slot: number): number {
    const s = this.state;
    this.counts[slot]++;
    if (slot === s.runBin) s.run++;
    else {
      s.runBin = slot;
      s.run = 1;
      s.runRef = this.runs[slot];
    }
    if (s.run > this.runs[slot]) this.runs[slot] = s.run;
    const limit = this.o.runFactor * s.runRef;
    return s.runRef > 0 && s.run >= limit && s.run - 1 < limit ? s.run / s.runRef : 0;
  }

  /** Bins span [lo, hi]; the per-bin history is rebuilt from the readings kept. */
  private rescale(): void {
    const s = this.state;
    const margin = (s.hi - s.lo) * this.o.margin;
    s.base = s.lo - margin;
    s.width = (s.hi - s.lo + 2 * margin) / this.o.bins || Math.abs(s.lo) * 1e-3 || 1;
    this.counts.fill(0);
    this.runs.fill(0);
    s.runBin = -99;
    s.run = 0;
    s.runRef = 0;
    // The hot loop of a rescale, inlined (counts and longest stays, as learn() keeps them).
    const ring = this.ring;
    const len = ring.length;
    const counts = this.counts;
    const runs = this.runs;
    const top = this.o.bins + 1;
    const m = Math.min(s.n - 1, len);
    let at = (((s.n - 1 - m) % len) + len) % len;
    let prev = -1;
    let run = 0;
    for (let i = 0; i < m; i++) {
      const b = Math.floor((ring[at] - s.base) / s.width);
      const slot = b < 0 ? 0 : b >= top - 1 ? top : b + 1;
      if (++at === len) at = 0;
      counts[slot]++;
      run = slot === prev ? run + 1 : 1;
      prev = slot;
      if (run > runs[slot]) runs[slot] = run;
    }
    if (m > 0) {
      s.runBin = prev;
      s.run = run;
      s.runRef = 0;
    }
  }

  /** Old extremes leave with the readings that made them: the range follows the ring when it shrank a lot. */
  private forget(): void {
    const s = this.state;
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of this.ring) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (hi - lo < this.o.forget * (s.hi - s.lo)) {
      s.lo = lo;
      s.hi = hi;
      this.rescale();
    }
  }

  /** The silence after which the stream counts as dropped out (0 before it is known). */
  private gapLimit(): number {
    const s = this.state;
    return s.n > this.o.warmup ? this.o.gapFactor * Math.max(s.gapMax, s.gapMaxPrev) : 0;
  }

  tick(now: number): Anomaly | null {
    const s = this.state;
    const limit = this.gapLimit();
    if (s.gapFired || s.paused || !(limit > 0) || now - s.lastTs <= limit) return null;
    s.gapFired = 1;
    const silent = now - s.lastTs;
    this.lastScore = Math.min(1, 0.5 + (0.5 * (silent - limit)) / limit);
    return {
      score: this.lastScore,
      reason: `no reading for ${(silent / 1000).toFixed(1)} s, over ${this.o.gapFactor}× the longest interval seen lately`,
      window: { silentSeconds: silent / 1000, limitSeconds: limit / 1000 },
    };
  }

  resume(): void {
    this.state.paused = 1;
  }

  process(x: number, ts: number): Anomaly | null {
    const s = this.state;
    const o = this.o;
    s.n++;
    if (s.n > 1 && !s.paused && ts - s.lastTs > s.gapMax) s.gapMax = ts - s.lastTs;
    s.paused = 0;
    s.lastTs = ts;
    s.gapFired = 0;
    if (s.n > 1 && x === s.eqValue) s.eq++;
    else {
      if (s.eq > s.eqMax) s.eqMax = s.eq;
      s.eq = 1;
      s.eqValue = x;
    }
    const stuck = s.eq === Math.max(o.stuckMin, 2 * Math.max(s.eqMax, s.eqMaxPrev) + 1);
    if (s.n % this.ring.length === 0) {
      // Periods of `memory` readings: "lately" is this period and the previous one.
      s.eqMaxPrev = s.eqMax;
      s.eqMax = 0;
      s.gapMaxPrev = s.gapMax;
      s.gapMax = 0;
    }
    const range = s.hi - s.lo;
    const excess = x < s.lo ? s.lo - x : x > s.hi ? x - s.hi : 0;
    const grew = x < s.lo || x > s.hi;
    if (x < s.lo) s.lo = x;
    if (x > s.hi) s.hi = x;
    const outside = x < s.base || x > s.base + o.bins * s.width;
    if (s.n === o.warmup || (s.n > o.warmup && outside)) this.rescale();
    else if (s.n > o.warmup && s.n % this.ring.length === 0) this.forget();
    const slot = this.slot(x);
    const unseen = this.counts[slot] === 0;
    const longer = this.learn(slot);
    this.ring[(s.n - 1) % this.ring.length] = x;
    let raw = 0;
    let reason = '';
    if (s.n > o.warmup) {
      if (grew) {
        raw = o.growthBase + (1 - o.growthBase) * (range > 0 ? Math.min(1, excess / range / o.growthSpan) : 1);
        reason = `value ${x} is ${x > s.lo ? 'above' : 'below'} anything seen before`;
      }
      if (unseen && o.newBinScore > raw) {
        raw = o.newBinScore;
        reason = `value ${x} is at a level not held before`;
      }
      if (longer >= o.runFactor && o.runScore > raw) {
        raw = o.runScore;
        reason = `value held at ${x} for ${s.run} readings, longer than ever before`;
      }
      if (stuck && o.stuckScore > raw) {
        raw = o.stuckScore;
        reason = `value stuck at exactly ${x} for ${s.eq} readings`;
      }
    }
    s.sinceAlarm++;
    const rest = Math.max(o.rest, s.restNow);
    const score = s.sinceAlarm <= rest ? 0 : raw;
    if (score >= o.threshold) {
      // Backoff: an alarm soon after the last rest ended means a stream that keeps doing new
      // things (a drift, a noisy source): the next rest is longer, up to `memory` readings.
      s.restNow = s.sinceAlarm <= rest * BACKOFF_WINDOW ? Math.min(rest * 2, this.ring.length) : o.rest;
    }
    if (raw >= o.threshold) s.sinceAlarm = 0;
    this.lastScore = score;
    if (score < o.threshold) return null;
    return { score, reason, window: { seen: s.n, low: s.lo, high: s.hi, bins: o.bins } };
  }

  override snapshot(): unknown {
    return { ...(super.snapshot() as object), ring: Array.from(this.ring), counts: Array.from(this.counts), runs: Array.from(this.runs) };
  }

  override restore(snap: unknown): void {
    super.restore(snap);
    const s = snap as { ring?: number[]; counts?: number[]; runs?: number[] };
    if (s.ring?.length === this.ring.length) this.ring.set(s.ring);
    if (s.counts?.length === this.counts.length) this.counts.set(s.counts);
    if (s.runs?.length === this.runs.length) this.runs.set(s.runs);
  }
}
