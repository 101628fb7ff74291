import { describe, expect, it } from 'vitest';
import { quantileOfSorted } from '../windows/accumulator.js';
import { normalQuantile, normalTail } from './normal.js';
import { P2Quantile } from './p2.js';
import { SortedWindow } from './sorted-window.js';

/** Deterministic pseudo-random numbers (tests must not flake). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('SortedWindow', () => {
  it('keeps the median and MAD of the last N values', () => {
    const w = new SortedWindow(5);
    for (const x of [5, 1, 4, 2, 3]) w.push(x);
    expect(w.median()).toBe(3);
    expect(w.mad()).toBe(1); // |x - 3| = 2, 2, 1, 1, 0 → median 1
    w.push(100); // drops 5: 1, 2, 3, 4, 100
    expect(w.median()).toBe(3);
    expect(w.mad()).toBe(1);
    expect(w.values()).toEqual([1, 4, 2, 3, 100]);
  });

  it('agrees with a brute-force median and MAD on a random stream', () => {
    const r = rng(7);
    const w = new SortedWindow(16);
    const recent: number[] = [];
    for (let i = 0; i < 500; i++) {
      const x = Math.round(r() * 50);
      w.push(x);
      recent.push(x);
      if (recent.length > 16) recent.shift();
      const sorted = [...recent].sort((a, b) => a - b);
      const med = quantileOfSorted(sorted, 0.5);
      const dev = sorted.map((v) => Math.abs(v - med)).sort((a, b) => a - b);
      expect(w.median()).toBe(med);
      expect(w.mad()).toBe(quantileOfSorted(dev, 0.5));
    }
  });
});

describe('P2Quantile', () => {
  it('is exact for up to five values', () => {
    const q = new P2Quantile(0.5);
    for (const x of [3, 1, 2]) q.add(x);
    expect(q.value()).toBe(2);
    const p90 = new P2Quantile(0.9);
    for (const x of [1, 2, 3, 4, 5]) p90.add(x);
    expect(p90.value()).toBeCloseTo(4.6, 10);
  });

  it('tracks percentiles of a large stream within a small error', () => {
    const r = rng(42);
    const qs = [0.5, 0.95, 0.99].map((p) => new P2Quantile(p));
    const all: number[] = [];
    for (let i = 0; i < 20_000; i++) {
      const x = r() * 1000;
      all.push(x);
      for (const q of qs) q.add(x);
    }
    all.sort((a, b) => a - b);
    for (const q of qs) expect(Math.abs(q.value() - quantileOfSorted(all, q.p))).toBeLessThan(15);
  });
});

describe('normal distribution', () => {
  it('has the textbook tail probabilities and quantiles', () => {
    expect(normalTail(0)).toBeCloseTo(0.5, 6);
    expect(normalTail(1.959964)).toBeCloseTo(0.025, 5);
    expect(normalTail(-1)).toBeCloseTo(0.841345, 5);
    expect(normalQuantile(0.975)).toBeCloseTo(1.959964, 5);
    expect(normalQuantile(0.99)).toBeCloseTo(2.326348, 5);
    expect(normalQuantile(0.001)).toBeCloseTo(-3.090232, 5);
  });
});
