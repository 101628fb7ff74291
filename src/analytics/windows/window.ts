/**
 * Streaming windows over one key's readings, in event time (the reading's `deviceTs` where given,
 * else the gateway's `ts`).
 *
 * Guarantees:
 * - A window closes once event time has passed its end by the allowed lateness (the watermark is
 *   the newest event time seen minus the lateness), or, when the stream goes quiet, once the wall
 *   clock says so (`advance(now)`): a window is never held open forever by silence.
 * - A reading that only belongs to windows already closed is late: counted, not aggregated.
 * - Each window is emitted once, with the aggregates configured; empty windows are not emitted.
 * - Memory per key is bounded: at most MAX_OPEN open windows (the oldest is closed early beyond
 *   that and counted), and a sliding window holds at most `maxEvents` readings.
 */
import type { WindowSpec } from '../schema.js';
import { Accumulator, aggregateValues } from './accumulator.js';

export interface WindowResult {
  start: number;
  end: number;
  values: Record<string, number>;
}

export interface WindowOp {
  /** Adds a reading at event time `t`, arriving at wall time `now`; returns windows it closed. */
  add(x: number, t: number, now: number, out: WindowResult[]): 'ok' | 'late';
  /** Closes what the wall clock says is over; returns the windows closed. */
  advance(now: number, out: WindowResult[]): void;
  /** Windows closed early because too many were open (memory bound). */
  readonly forced: number;
}

export const MAX_OPEN = 1000;

export function createWindow(spec: WindowSpec, lateness: number): WindowOp {
  switch (spec.type) {
    case 'tumbling':
      return new TimeWindows(spec.aggregates, spec.size ?? 1, spec.size ?? 1, lateness);
    case 'hopping':
      return new TimeWindows(spec.aggregates, spec.size ?? 1, spec.hop ?? spec.size ?? 1, lateness);
    case 'sliding':
      return new SlidingWindow(spec.aggregates, spec.size ?? 1, spec.maxEvents, lateness);
    case 'session':
      return new SessionWindows(spec.aggregates, spec.gap ?? 1, spec.size, lateness);
  }
}

/** Event time keeps moving while the source is quiet: the newest event time plus the wall time since it came. */
class Clock {
  maxT = -Infinity;
  arrival = 0;

  see(t: number, now: number): void {
    if (t > this.maxT) {
      this.maxT = t;
      this.arrival = now;
    }
  }

  at(now: number): number {
    return this.maxT + Math.max(0, now - this.arrival);
  }
}

/** Tumbling (hop = size) and hopping windows, aligned to the epoch: [k·hop, k·hop + size). */
class TimeWindows implements WindowOp {
  private readonly open = new Map<number, Accumulator>();
  private readonly clock = new Clock();
  /** Every window ending at or before this is closed. */
  private closedUpTo = -Infinity;
  /** The earliest end among the open windows (nothing to close before the watermark reaches it). */
  private nextEnd = Infinity;
  forced = 0;

  constructor(
    private readonly aggregates: readonly string[],
    private readonly size: number,
    private readonly hop: number,
    private readonly lateness: number,
  ) {}

  add(x: number, t: number, now: number, out: WindowResult[]): 'ok' | 'late' {
    const last = Math.floor(t / this.hop) * this.hop;
    let added = false;
    for (let start = last; start > t - this.size; start -= this.hop) {
      if (start + this.size <= this.closedUpTo) break;
      let acc = this.open.get(start);
      if (!acc) {
        acc = new Accumulator(this.aggregates);
        this.open.set(start, acc);
        if (start + this.size < this.nextEnd) this.nextEnd = start + this.size;
      }
      acc.add(x, t);
      added = true;
    }
    this.clock.see(t, now);
    this.close(this.clock.maxT - this.lateness, out);
    if (this.open.size > MAX_OPEN) this.closeOldest(out);
    return added ? 'ok' : 'late';
  }

  advance(now: number, out: WindowResult[]): void {
    if (this.open.size > 0) this.close(this.clock.at(now) - this.lateness, out);
  }

  private close(watermark: number, out: WindowResult[]): void {
    if (watermark <= this.closedUpTo) return;
    this.closedUpTo = watermark;
    if (watermark < this.nextEnd) return;
    const done = [...this.open.keys()].filter((s) => s + this.size <= watermark).sort((a, b) => a - b);
    for (const start of done) this.emit(start, out);
    this.nextEnd = Infinity;
    for (const start of this.open.keys()) if (start + this.size < this.nextEnd) this.nextEnd = start + this.size;
  }

  private closeOldest(out: WindowResult[]): void {
    const starts = [...this.open.keys()].sort((a, b) => a - b);
    for (const start of starts.slice(0, this.open.size - MAX_OPEN)) {
      this.emit(start, out);
      this.closedUpTo = Math.max(this.closedUpTo, start + this.size);
      this.forced++;
    }
    this.nextEnd = Infinity;
    for (const start of this.open.keys()) if (start + this.size < this.nextEnd) this.nextEnd = start + this.size;
  }

  private emit(start: number, out: WindowResult[]): void {
    const acc = this.open.get(start);
    this.open.delete(start);
    if (acc && acc.count > 0) out.push({ start, end: start + this.size, values: acc.result(this.size) });
  }
}

/**
 * Sliding window: on every reading, the aggregates over the readings of the last `size` ms of event
 * time (as Azure Stream Analytics' SlidingWindow emits when its content changes). Holds at most
 * `maxEvents` readings, sorted by event time.
 */
class SlidingWindow implements WindowOp {
  private ts: number[] = [];
  private xs: number[] = [];
  private maxT = -Infinity;
  forced = 0;

  constructor(
    private readonly aggregates: readonly string[],
    private readonly size: number,
    private readonly maxEvents: number,
    private readonly lateness: number,
  ) {}

  add(x: number, t: number, _now: number, out: WindowResult[]): 'ok' | 'late' {
    if (t < this.maxT - this.lateness) return 'late';
    let i = this.ts.length;
    while (i > 0 && this.ts[i - 1] > t) i--;
    this.ts.splice(i, 0, t);
    this.xs.splice(i, 0, x);
    if (t > this.maxT) this.maxT = t;
    let drop = 0;
    while (drop < this.ts.length && this.ts[drop] <= this.maxT - this.size) drop++;
    if (this.ts.length - drop > this.maxEvents) {
      this.forced += this.ts.length - drop - this.maxEvents;
      drop = this.ts.length - this.maxEvents;
    }
    if (drop > 0) {
      this.ts.splice(0, drop);
      this.xs.splice(0, drop);
    }
    out.push({
      start: this.maxT - this.size,
      end: this.maxT,
      values: aggregateValues(this.xs, this.aggregates, this.size, this.xs[this.xs.length - 1]),
    });
    return 'ok';
  }

  advance(): void {}
}

/**
 * Session windows: readings closer than `gap` in event time form one session; a session closes once
 * event time passed its last reading by `gap` (+ lateness), or when it spans `maxSpan`.
 */
class SessionWindows implements WindowOp {
  private sessions: { start: number; end: number; acc: Accumulator }[] = [];
  private readonly clock = new Clock();
  private closedUpTo = -Infinity;
  forced = 0;

  constructor(
    private readonly aggregates: readonly string[],
    private readonly gap: number,
    private readonly maxSpan: number | undefined,
    private readonly lateness: number,
  ) {}

  add(x: number, t: number, now: number, out: WindowResult[]): 'ok' | 'late' {
    // Late: it would have joined a session already emitted, or its own session would be over already.
    if (t <= this.closedUpTo + this.gap || t + this.gap < this.clock.maxT - this.lateness) return 'late';
    let hit = this.sessions.findIndex((s) => t >= s.start - this.gap && t <= s.end + this.gap);
    if (hit >= 0 && this.maxSpan !== undefined) {
      const s = this.sessions[hit];
      if (Math.max(s.end, t) - Math.min(s.start, t) > this.maxSpan) {
        // Cut at the longest span; the reading starts the next session (not late).
        this.emit(hit, out, false);
        hit = -1;
      }
    }
    if (hit < 0) {
      this.sessions.push({ start: t, end: t, acc: new Accumulator(this.aggregates) });
      this.sessions.sort((a, b) => a.start - b.start);
      hit = this.sessions.findIndex((s) => s.start === t && s.acc.count === 0);
    }
    const s = this.sessions[hit];
    s.acc.add(x, t);
    s.start = Math.min(s.start, t);
    s.end = Math.max(s.end, t);
    this.clock.see(t, now);
    this.close(this.clock.maxT - this.lateness, out);
    while (this.sessions.length > MAX_OPEN) {
      this.emit(0, out);
      this.forced++;
    }
    return 'ok';
  }

  advance(now: number, out: WindowResult[]): void {
    if (this.sessions.length > 0) this.close(this.clock.at(now) - this.lateness, out);
  }

  private close(watermark: number, out: WindowResult[]): void {
    while (this.sessions.length > 0 && this.sessions[0].end + this.gap < watermark) this.emit(0, out);
  }

  private emit(i: number, out: WindowResult[], closes = true): void {
    const [s] = this.sessions.splice(i, 1);
    if (closes) this.closedUpTo = Math.max(this.closedUpTo, s.end);
    out.push({ start: s.start, end: s.end, values: s.acc.result(s.end - s.start) });
  }
}
