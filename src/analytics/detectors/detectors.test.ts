import { describe, expect, it } from 'vitest';
import { DETECTOR_TYPES } from '../schema.js';
import { AutoDetector } from './auto.js';
import type { Detector } from './detector.js';
import { createDetector } from './index.js';

/** Deterministic noise in [-1, 1). */
function noise(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32) * 2 - 1;
  };
}

/** Runs values at 1 s intervals; returns the indices that raised an anomaly. */
function run(d: Detector, values: number[], t0 = 0): number[] {
  const hits: number[] = [];
  values.forEach((x, i) => {
    const a = d.process(x, t0 + i * 1000);
    expect(d.lastScore).toBeGreaterThanOrEqual(0);
    expect(d.lastScore).toBeLessThanOrEqual(1);
    if (a) {
      expect(a.score).toBeGreaterThan(0);
      expect(a.score).toBeLessThanOrEqual(1);
      expect(a.reason.length).toBeGreaterThan(10);
      hits.push(i);
    }
  });
  return hits;
}

const wave = (n: number, seed = 1) => {
  const r = noise(seed);
  return Array.from({ length: n }, (_, i) => 20 + 5 * Math.sin((2 * Math.PI * i) / 50) + 0.3 * r());
};

describe('threshold', () => {
  it('fires once per excursion and clears only past the hysteresis', () => {
    const d = createDetector({ type: 'threshold', high: 10, hysteresis: 2 });
    // 11 fires; 9.5 is inside but not by 2: still in alarm, so 11 again does not fire; 7 clears; 12 fires.
    expect(run(d, [5, 11, 12, 9.5, 11, 7, 12])).toEqual([1, 6]);
  });

  it('watches a low limit too', () => {
    const d = createDetector({ type: 'threshold', low: 0, high: 100, hysteresis: 0 });
    expect(run(d, [50, -1, -2, 1, -5, 101])).toEqual([1, 4, 5]);
  });
});

describe('rate-of-change', () => {
  it('flags a jump per reading and a rate per second', () => {
    expect(run(createDetector({ type: 'rate-of-change', maxDelta: 5 }), [0, 3, 6, 20, 21])).toEqual([3]);
    const d = createDetector({ type: 'rate-of-change', maxRate: 2 });
    expect(d.process(0, 0)).toBeNull();
    expect(d.process(3, 2000)).toBeNull(); // 1.5/s
    expect(d.process(10, 3000)?.window?.rate).toBe(7);
  });
});

describe('flatline', () => {
  it('fires on the reading that completes the run, once, and re-arms', () => {
    const d = createDetector({ type: 'flatline', count: 4, tolerance: 0.01 });
    expect(run(d, [1, 2, 3, 3, 3.005, 3, 3, 3, 4, 4, 4, 4])).toEqual([5, 11]);
  });
});

describe('gap', () => {
  it('learns the interval and fires from the clock, once, when readings stop', () => {
    const d = createDetector({ type: 'gap', factor: 3 });
    for (let i = 0; i < 10; i++) expect(d.process(1, i * 1000)).toBeNull();
    expect(d.tick?.(9000 + 2500)).toBeNull();
    const a = d.tick?.(9000 + 3100);
    expect(a?.reason).toMatch(/no reading for 3\.1 s \(expected every 1\.0 s\)/);
    expect(d.tick?.(9000 + 10_000)).toBeNull(); // once per silence
    expect(d.process(1, 30_000)).toBeNull(); // already reported by the clock
    for (let i = 1; i <= 3; i++) d.process(1, 30_000 + i * 1000);
    expect(d.tick?.(33_000 + 3100)).not.toBeNull(); // re-armed
  });

  it('flags the reading that ends a gap when no clock ticked (offline replay)', () => {
    const d = createDetector({ type: 'gap', interval: 1000, factor: 3 });
    expect(run(d, [1, 1, 1])).toEqual([]);
    expect(d.process(1, 2000 + 5000)).not.toBeNull();
  });
});

describe('statistical detectors', () => {
  const spiky = () => {
    const v = wave(400);
    v[300] = 60;
    return v;
  };

  it('zscore flags the spike and little else', () => {
    const hits = run(createDetector({ type: 'zscore', window: 64, threshold: 6, warmup: 16 }), spiky());
    expect(hits).toContain(300);
    expect(hits.length).toBeLessThanOrEqual(3);
  });

  it('spike-and-dip flags the spike, not the dip mode', () => {
    expect(run(createDetector({ type: 'spike-and-dip', confidence: 99.9, historySize: 120, mode: 'spikes' }), spiky())).toEqual([300]);
    expect(run(createDetector({ type: 'spike-and-dip', confidence: 99.9, historySize: 120, mode: 'dips' }), spiky())).toEqual([]);
  });

  it('ewma flags a sustained shift within a few readings, once', () => {
    const r = noise(3);
    const v = Array.from({ length: 300 }, (_, i) => (i < 200 ? 10 : 12) + r());
    const hits = run(createDetector({ type: 'ewma', lambda: 0.2, limit: 3, warmup: 50 }), v);
    expect(hits.length).toBeGreaterThanOrEqual(1);
    expect(hits[0]).toBeGreaterThanOrEqual(200);
    expect(hits[0]).toBeLessThan(210);
  });

  it('change-point works at any magnitude (no cancellation at 1e9 ± 1)', () => {
    const r = noise(6);
    const v = Array.from({ length: 1000 }, (_, i) => 1e9 + (i < 700 ? 0 : 10) + 2 * r());
    const hits = run(createDetector({ type: 'change-point', confidence: 99, historySize: 120 }), v);
    expect(hits).toHaveLength(1);
    expect(hits[0]).toBeGreaterThanOrEqual(700);
    expect(hits[0]).toBeLessThan(706);
  });

  it('change-point reports a level shift once', () => {
    const r = noise(5);
    const v = Array.from({ length: 400 }, (_, i) => (i < 250 ? 100 : 110) + 2 * r());
    const hits = run(createDetector({ type: 'change-point', confidence: 99, historySize: 120 }), v);
    expect(hits).toHaveLength(1);
    expect(hits[0]).toBeGreaterThanOrEqual(250);
    expect(hits[0]).toBeLessThan(256);
  });
});

describe('auto', () => {
  it('needs no options: flags a spike on the reading itself, a stuck value, a dropout, not a steady wave', () => {
    const v = wave(600);
    v[400] = 40;
    for (let i = 500; i < 600; i++) v[i] = v[499];
    const d = createDetector('auto');
    // The stuck run starts at reading 499; the 5th equal reading (503) is more than twice any repeat before.
    expect(run(d, v)).toEqual([400, 503]);
    // Dropout, from the clock: readings came every second; silence beyond 3 s is reported once.
    expect(d.tick?.(599_000 + 2900)).toBeNull();
    expect(d.tick?.(599_000 + 3100)?.reason).toMatch(/no reading for 3\.1 s/);
    expect(d.tick?.(599_000 + 9000)).toBeNull();
  });

  it('after resume() (a restart), does not take the downtime for a dropout', () => {
    const d = createDetector('auto');
    run(d, wave(300));
    const e = createDetector('auto');
    e.restore(JSON.parse(JSON.stringify(d.snapshot())));
    e.resume?.();
    expect(e.tick?.(3_600_000)).toBeNull();
    e.process(20, 3_600_000);
    // The interval across the restart was not learned: a 4 s silence still counts.
    expect(e.tick?.(3_604_000)).not.toBeNull();
  });

  it('backs off on a stream that keeps making new extremes (a noisy drift): no storm', () => {
    const r = noise(21);
    const drift = Array.from({ length: 20_000 }, (_, i) => i * 0.001 + 0.2 * r());
    const hits = run(createDetector('auto'), drift);
    // Fixed rests would allow one every 31 readings (645); it reports one per several hundred.
    expect(hits.length).toBeLessThanOrEqual(60);
    const spacing = hits.slice(1).map((h, i) => h - hits[i]);
    expect(spacing.filter((d) => d > 100).length).toBeGreaterThan(spacing.length / 2);
  });

  it('stays quiet for the rest period after an alarm', () => {
    const v = wave(400);
    v[300] = 40;
    v[305] = 80;
    expect(run(new AutoDetector({ rest: 30 }), v)).toEqual([300]);
    expect(run(new AutoDetector({ rest: 0 }), v)).toEqual([300, 305]);
  });

  it('keeps bounded state: memory does not grow with the stream', () => {
    const d = new AutoDetector();
    const r = noise(9);
    for (let i = 0; i < 5000; i++) d.process(r() * 1000 + i, i);
    const size = JSON.stringify(d.snapshot()).length;
    for (let i = 5000; i < 50_000; i++) d.process(r() * 1000 + i, i);
    expect(JSON.stringify(d.snapshot()).length).toBeLessThan(size * 1.2);
  });
});

describe('auto with changePoint', () => {
  it('also reports a sustained level shift auto alone waits out, and survives a snapshot', () => {
    const base = wave(400, 5);
    // A shift inside the range already seen: no new extreme, but the level moved and stays.
    const v = [...base, ...wave(300, 6).map((x) => x + 3)];
    const plain = run(createDetector('auto'), v).filter((i) => i >= 400);
    const d = createDetector({ type: 'auto', changePoint: true });
    const both = run(d, v.slice(0, 450)).filter((i) => i >= 400);
    expect(both.length).toBeGreaterThan(0);
    expect(both[0]).toBeLessThanOrEqual(plain[0] ?? Infinity);
    expect(d.type).toBe('auto');
    const e = createDetector({ type: 'auto', changePoint: true });
    e.restore(JSON.parse(JSON.stringify(d.snapshot())));
    expect(run(e, v.slice(450))).toEqual(run(d, v.slice(450)));
  });
});

describe('snapshot and restore', () => {
  it('every detector resumes where it was', () => {
    // multivariate judges vectors: its own test covers its snapshot (multivariate.test.ts).
    for (const type of DETECTOR_TYPES.filter((t) => t !== 'multivariate')) {
      const spec =
        type === 'threshold' ? { type, high: 25, hysteresis: 1 } : type === 'rate-of-change' ? { type, maxDelta: 3 } : type;
      const v = wave(300, 11);
      v[250] = 45;
      const a = createDetector(spec as never);
      const b = createDetector(spec as never);
      const first = v.slice(0, 200);
      first.forEach((x, i) => a.process(x, i * 1000));
      b.restore(JSON.parse(JSON.stringify(a.snapshot())));
      const rest = v.slice(200);
      const ra = run(a, rest, 200_000);
      const rb = run(b, rest, 200_000);
      expect(rb, type).toEqual(ra);
    }
  });

  it('refuses a foreign snapshot', () => {
    const z = createDetector('zscore');
    expect(() => z.restore(createDetector('ewma').snapshot())).toThrow(/not a zscore/);
    expect(() => createDetector('ewma').restore({ type: 'ewma', state: { n: 'x' } })).toThrow(/bad "n"/);
  });
});
