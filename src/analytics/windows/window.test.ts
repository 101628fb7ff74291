import { describe, expect, it } from 'vitest';
import type { WindowSpec } from '../schema.js';
import { createWindow, type WindowResult } from './window.js';

const ALL = ['count', 'sum', 'min', 'max', 'mean', 'stddev', 'rate', 'last', 'p50'];

function spec(s: Partial<WindowSpec> & Pick<WindowSpec, 'type'>): WindowSpec {
  return { aggregates: ALL, topic: '{topic}/{window}', maxEvents: 1000, ...s };
}

/** Feeds (t, x) pairs arriving at wall time t; returns every window closed, in order. */
function feed(w: ReturnType<typeof createWindow>, events: [number, number][]): { out: WindowResult[]; late: number } {
  const out: WindowResult[] = [];
  let late = 0;
  for (const [t, x] of events) if (w.add(x, t, t, out) === 'late') late++;
  return { out, late };
}

describe('tumbling window', () => {
  it('emits hand-computed aggregates when event time passes the end', () => {
    const w = createWindow(spec({ type: 'tumbling', size: 10_000 }), 0);
    const { out } = feed(w, [
      [1000, 1],
      [2000, 2],
      [9000, 3],
    ]);
    expect(out).toEqual([]);
    feed(w, [[10_000, 10]]).out.forEach((r) => out.push(r));
    expect(out).toHaveLength(1);
    // 1, 2, 3: sum 6, mean 2, sample σ = sqrt(((1-2)² + 0 + (3-2)²) / 2) = 1, 3 readings in 10 s.
    expect(out[0]).toEqual({
      start: 0,
      end: 10_000,
      values: { count: 3, sum: 6, min: 1, max: 3, mean: 2, stddev: 1, rate: 0.3, last: 3, p50: 2 },
    });
  });

  it('takes late readings within the allowed lateness, counts the later ones as late', () => {
    const w = createWindow(spec({ type: 'tumbling', size: 10_000, aggregates: ['count', 'sum', 'last'] }), 5000);
    const a = feed(w, [
      [1000, 1],
      [2000, 2],
      [9000, 3],
      [12_000, 4], // opens [10 s, 20 s); [0, 10 s) stays open until event time 15 s
      [8000, 5], // late by 4 s: within lateness, counted in [0, 10 s); not its `last` (event time 9 s is later)
    ]);
    expect(a.out).toEqual([]);
    expect(a.late).toBe(0);
    const b = feed(w, [
      [16_000, 6], // watermark 11 s: closes [0, 10 s)
      [7000, 100], // its window is closed: late, not aggregated
    ]);
    expect(b.out).toEqual([{ start: 0, end: 10_000, values: { count: 4, sum: 11, last: 3 } }]);
    expect(b.late).toBe(1);
    const out: WindowResult[] = [];
    w.advance(16_000 + 9000, out); // quiet source: wall clock moves event time to 25 s, watermark 20 s
    expect(out).toEqual([{ start: 10_000, end: 20_000, values: { count: 2, sum: 10, last: 6 } }]);
  });

  it('closes a window by the wall clock when the source goes quiet', () => {
    const w = createWindow(spec({ type: 'tumbling', size: 10_000, aggregates: ['count'] }), 0);
    feed(w, [[1000, 1]]);
    const out: WindowResult[] = [];
    w.advance(9_999, out);
    expect(out).toEqual([]);
    w.advance(10_000, out);
    expect(out).toEqual([{ start: 0, end: 10_000, values: { count: 1 } }]);
    w.advance(50_000, out);
    expect(out).toHaveLength(1);
  });
});

describe('hopping window', () => {
  it('puts each reading in every window that covers it', () => {
    const w = createWindow(spec({ type: 'hopping', size: 10_000, hop: 5000, aggregates: ['count', 'sum'] }), 0);
    const { out } = feed(w, [
      [1000, 1],
      [6000, 2],
      [11_000, 3],
      [30_000, 0],
    ]);
    expect(out).toEqual([
      { start: -5000, end: 5000, values: { count: 1, sum: 1 } },
      { start: 0, end: 10_000, values: { count: 2, sum: 3 } },
      { start: 5000, end: 15_000, values: { count: 2, sum: 5 } },
      { start: 10_000, end: 20_000, values: { count: 1, sum: 3 } },
    ]);
  });
});

describe('sliding window', () => {
  it('emits the aggregates of the last size ms on every reading', () => {
    const w = createWindow(spec({ type: 'sliding', size: 10_000, aggregates: ['count', 'mean', 'max', 'p50'] }), 0);
    const { out } = feed(w, [
      [0, 1],
      [5000, 2],
      [12_000, 3],
    ]);
    expect(out.map((r) => r.values)).toEqual([
      { count: 1, mean: 1, max: 1, p50: 1 },
      { count: 2, mean: 1.5, max: 2, p50: 1.5 },
      // (2 s, 12 s]: the reading at 0 s has left.
      { count: 2, mean: 2.5, max: 3, p50: 2.5 },
    ]);
  });

  it('holds at most maxEvents readings', () => {
    const w = createWindow(spec({ type: 'sliding', size: 1e9, maxEvents: 3, aggregates: ['count', 'sum'] }), 0);
    const { out } = feed(w, [
      [1, 1],
      [2, 2],
      [3, 3],
      [4, 4],
    ]);
    expect(out[3].values).toEqual({ count: 3, sum: 9 });
    expect(w.forced).toBe(1);
  });
});

describe('session window', () => {
  it('groups readings closer than the gap and closes on silence', () => {
    const w = createWindow(spec({ type: 'session', gap: 5000, aggregates: ['count', 'mean', 'min', 'max'] }), 0);
    const { out } = feed(w, [
      [0, 1],
      [2000, 2],
      [4000, 3],
      [20_000, 4],
    ]);
    expect(out).toEqual([{ start: 0, end: 4000, values: { count: 3, mean: 2, min: 1, max: 3 } }]);
    const idle: WindowResult[] = [];
    w.advance(24_000, idle);
    expect(idle).toEqual([]);
    w.advance(25_001, idle);
    expect(idle).toEqual([{ start: 20_000, end: 20_000, values: { count: 1, mean: 4, min: 4, max: 4 } }]);
  });

  it('counts a reading for a session already closed as late', () => {
    const w = createWindow(spec({ type: 'session', gap: 1000, aggregates: ['count'] }), 0);
    const { out, late } = feed(w, [
      [0, 1],
      [5000, 2],
      [100, 3],
    ]);
    expect(out).toEqual([{ start: 0, end: 0, values: { count: 1 } }]);
    expect(late).toBe(1);
  });
});

describe('session window with a longest span', () => {
  it('cuts a session at size and goes on with the next', () => {
    const w = createWindow(spec({ type: 'session', gap: 5000, size: 3000, aggregates: ['count'] }), 0);
    const { out, late } = feed(w, [
      [0, 1],
      [2000, 2],
      [4000, 3],
      [5000, 4],
    ]);
    expect(late).toBe(0);
    expect(out).toEqual([{ start: 0, end: 2000, values: { count: 2 } }]);
    const idle: WindowResult[] = [];
    w.advance(60_000, idle);
    expect(idle).toEqual([{ start: 4000, end: 5000, values: { count: 2 } }]);
  });
});
