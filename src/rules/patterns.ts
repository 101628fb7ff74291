/**
 * The three temporal patterns, each a small state machine per key, driven by event time (the
 * device's `deviceTs` where given, else the gateway's `ts`):
 *
 * - sequence: steps 1..n in order, each later than the one before, all within `within` of step 1.
 *   Every event matching step 1 opens a partial match (at most `maxPending` per key, the oldest
 *   evicted and counted); an event matching the next step of a partial advances it, with `first`
 *   bound to step 1's event. A completed match fires once and clears the key's partials.
 * - absence: an event matching `match` arms a deadline `within` later; the `then` event (or, without
 *   `then`, the next event like the first: a heartbeat) disarms or re-arms it. A deadline passed
 *   fires once; the key stays quiet until it is armed again.
 * - count: a sliding window of the key's matching events (at most `maxPending`, the oldest evicted
 *   and counted); fires when at least `atLeast` fall within `within` and `having` holds, once per
 *   excursion (again only after the condition has been false).
 *
 * None of them evaluates an expression: the engine decides what an event is (which step, whether
 * `where` holds) and hands in the outcome, so a pattern is pure bookkeeping and cannot throw on data.
 */
import type { Bindings } from './cel.js';

/** What a pattern found: the engine turns it into an alarm and actions. */
export interface PatternMatch {
  key: string;
  /** The event that completed the match (absence: the last one seen before the silence). */
  event: Bindings;
  first?: Bindings;
  detail: Record<string, unknown>;
}

export interface Evictions {
  keys: number;
  pending: number;
}

/**
 * Per-key state with a bound: touching a key makes it the most recent; beyond `max`, the least
 * recently touched goes (counted). Map order is the recency order (delete + set on touch).
 */
export class KeyedState<S> {
  readonly map = new Map<string, S>();
  constructor(
    private readonly max: number,
    private readonly evictions: Evictions,
  ) {}

  get(key: string, make: () => S): S {
    let s = this.map.get(key);
    if (s !== undefined) {
      this.map.delete(key);
      this.map.set(key, s);
      return s;
    }
    if (this.map.size >= this.max) {
      const oldest = this.map.keys().next().value as string;
      this.map.delete(oldest);
      this.evictions.keys++;
    }
    s = make();
    this.map.set(key, s);
    return s;
  }

  peek(key: string): S | undefined {
    return this.map.get(key);
  }
}

interface Partial {
  step: number;
  startT: number;
  lastT: number;
  first: Bindings;
  seqs: unknown[];
}

export class SequencePattern {
  readonly keys: KeyedState<Partial[]>;
  constructor(
    readonly steps: number,
    private readonly within: number,
    private readonly maxPending: number,
    readonly evictions: Evictions,
    maxKeys: number,
  ) {
    this.keys = new KeyedState(maxKeys, evictions);
  }

  /**
   * One event of a key. `advances(step, first)` says whether the event meets that step for a
   * partial whose first event is `first`; `starts` whether it meets step 1.
   */
  offer(
    key: string,
    event: Bindings,
    t: number,
    starts: boolean,
    advances: (step: number, first: Bindings) => boolean,
  ): PatternMatch | undefined {
    const partials = starts ? this.keys.get(key, () => []) : this.keys.peek(key);
    if (!partials) return undefined;
    for (let i = 0; i < partials.length; i++) {
      const p = partials[i];
      if (t - p.startT > this.within) {
        partials.splice(i--, 1);
        continue;
      }
      if (t < p.lastT || !advances(p.step, p.first)) continue;
      p.step++;
      p.lastT = t;
      p.seqs.push(event.seq);
      if (p.step === this.steps) {
        partials.length = 0;
        return { key, event, first: p.first, detail: { pattern: 'sequence', sourceSeqs: p.seqs, elapsedMs: t - p.startT } };
      }
    }
    if (starts) {
      if (partials.length >= this.maxPending) {
        partials.shift();
        this.evictions.pending++;
      }
      partials.push({ step: 1, startT: t, lastT: t, first: event, seqs: [event.seq] });
    }
    return undefined;
  }

  /** Forgets partial matches that can no longer complete at event time `now`. */
  expire(now: number): void {
    for (const [key, partials] of this.keys.map) {
      for (let i = 0; i < partials.length; i++) if (now - partials[i].startT > this.within) partials.splice(i--, 1);
      if (partials.length === 0) this.keys.map.delete(key);
    }
  }

  pending(): number {
    let n = 0;
    for (const p of this.keys.map.values()) n += p.length;
    return n;
  }
}

interface Watch {
  armed: boolean;
  /** Deadline in event time, and on the wall clock (for a source that went quiet). */
  deadlineT: number;
  deadlineWall: number;
  first: Bindings;
  last: Bindings;
}

export class AbsencePattern {
  readonly keys: KeyedState<Watch>;
  constructor(
    private readonly within: number,
    private readonly lateness: number,
    private readonly heartbeat: boolean,
    readonly evictions: Evictions,
    maxKeys: number,
  ) {
    this.keys = new KeyedState(maxKeys, evictions);
  }

  /** A `match` event (`arms`) and/or a `then` event (`clears`) of a key, at event time `t`, arriving at `wall`. */
  offer(key: string, event: Bindings, t: number, wall: number, arms: boolean, clears: (first: Bindings) => boolean): PatternMatch | undefined {
    const w = arms ? this.keys.get(key, () => ({ armed: false, deadlineT: 0, deadlineWall: 0, first: event, last: event })) : this.keys.peek(key);
    if (!w) return undefined;
    // A deadline already passed in event time (a replay, a late batch) fires before this event counts.
    const missed = w.armed && t > w.deadlineT + this.lateness ? this.fire(key, w) : undefined;
    if (w.armed && !this.heartbeat && clears(w.first)) w.armed = false;
    if (arms && (this.heartbeat || !w.armed)) {
      w.armed = true;
      w.first = event;
      w.deadlineT = t + this.within;
      w.deadlineWall = wall + this.within + this.lateness;
    }
    if (arms) w.last = event;
    return missed;
  }

  /** Deadlines passed by event time `watermark` or wall clock `wall`. */
  due(watermark: number, wall: number, out: PatternMatch[]): void {
    for (const [key, w] of this.keys.map) {
      if (w.armed && (watermark > w.deadlineT + this.lateness || wall >= w.deadlineWall)) out.push(this.fire(key, w));
    }
  }

  pending(): number {
    let n = 0;
    for (const w of this.keys.map.values()) if (w.armed) n++;
    return n;
  }

  private fire(key: string, w: Watch): PatternMatch {
    w.armed = false;
    return {
      key,
      event: w.last,
      first: w.first,
      detail: { pattern: 'absence', withinMs: this.within, lastSeq: w.last.seq, lastTs: w.last.ts, sinceSeq: w.first.seq },
    };
  }
}

export interface WindowView {
  count: number;
  sum: number;
  min: number;
  max: number;
  mean: number;
  last: number;
  /** Event time of the oldest and newest event in the window. */
  start: number;
  end: number;
}

interface Slide {
  t: number[];
  v: number[];
  firing: boolean;
}

export class CountPattern {
  readonly keys: KeyedState<Slide>;
  constructor(
    private readonly within: number,
    private readonly maxPending: number,
    readonly evictions: Evictions,
    maxKeys: number,
  ) {
    this.keys = new KeyedState(maxKeys, evictions);
  }

  /** Adds an event at time `t` with number `v` (NaN when the rule aggregates none); returns the window. */
  add(key: string, t: number, v: number): { window: WindowView; state: Slide } {
    const s = this.keys.get(key, () => ({ t: [], v: [], firing: false }));
    this.slide(s, t);
    if (s.t.length >= this.maxPending) {
      s.t.shift();
      s.v.shift();
      this.evictions.pending++;
    }
    // Taken in event-time order: a late (but allowed) event goes to its place.
    let i = s.t.length;
    while (i > 0 && s.t[i - 1] > t) i--;
    s.t.splice(i, 0, t);
    s.v.splice(i, 0, v);
    return { window: view(s), state: s };
  }

  /** Whether the condition holding now starts an excursion (fires) or continues one. */
  judge(key: string, state: Slide, holds: boolean, event: Bindings, window: Record<string, unknown>): PatternMatch | undefined {
    if (!holds) {
      state.firing = false;
      return undefined;
    }
    if (state.firing) return undefined;
    state.firing = true;
    return { key, event, detail: { pattern: 'count', withinMs: this.within, window } };
  }

  /** Slides every key's window to event time `now` (re-arming keys whose count fell). */
  expire(now: number, atLeast: number): void {
    for (const [key, s] of this.keys.map) {
      this.slide(s, now);
      if (s.t.length < atLeast) s.firing = false;
      if (s.t.length === 0) this.keys.map.delete(key);
    }
  }

  pending(): number {
    let n = 0;
    for (const s of this.keys.map.values()) n += s.t.length;
    return n;
  }

  private slide(s: Slide, now: number): void {
    let drop = 0;
    while (drop < s.t.length && now - s.t[drop] > this.within) drop++;
    if (drop > 0) {
      s.t.splice(0, drop);
      s.v.splice(0, drop);
    }
  }
}

function view(s: Slide): WindowView {
  let sum = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const x of s.v) {
    sum += x;
    if (x < min) min = x;
    if (x > max) max = x;
  }
  const count = s.t.length;
  return { count, sum, min, max, mean: count ? sum / count : Number.NaN, last: s.v[count - 1], start: s.t[0], end: s.t[count - 1] };
}
