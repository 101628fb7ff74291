import { describe, expect, it } from 'vitest';
import { type AlignedVector, Aligner } from './align.js';

describe('Aligner', () => {
  it('makes one vector of readings that arrive at slightly different times, in the configured order', () => {
    const a = new Aligner(500, 5000, ['flow', 'pressure']);
    const out: AlignedVector[] = [];
    expect(a.add('pressure', 3, 1000, 1, out)).toBe('ok');
    expect(out).toEqual([]);
    a.add('flow', 10, 1120, 2, out);
    expect(out.map((v) => [...v.values])).toEqual([[10, 3]]);
    expect(out[0]).toMatchObject({ ts: 1120, seq: 2 });
  });

  it('closes on a repeat or after align, holding a missing value while it is young enough', () => {
    const a = new Aligner(500, 2000, ['a', 'b']);
    const out: AlignedVector[] = [];
    a.add('a', 1, 0, 1, out);
    a.add('b', 2, 10, 2, out); // complete
    a.add('a', 3, 1000, 3, out);
    a.add('a', 4, 1100, 4, out); // a again: the open vector closes with b held
    a.add('b', 5, 1700, 5, out); // past align from 1100: closes [4, 2]... then opens with b
    expect(out.map((v) => [...v.values])).toEqual([[1, 2], [3, 2], [4, 2]]);
    expect(a.tick(1700 + 501, out)).toBe('ok');
    expect(out.map((v) => [...v.values]).at(-1)).toEqual([4, 5]);
    // b goes quiet: once its last value is older than maxAge, vectors are held back.
    a.add('a', 6, 5000, 6, out);
    expect(a.tick(6000, out)).toBe('stale');
    expect(out).toHaveLength(4);
  });

  it('learns the variables from the first align period, sorted, and refuses newcomers', () => {
    const a = new Aligner(1000, 10_000);
    const out: AlignedVector[] = [];
    a.add('z', 1, 0, 1, out);
    a.add('m', 2, 300, 2, out);
    expect(a.names).toBeUndefined();
    a.add('z', 3, 1500, 3, out);
    expect(a.names).toEqual(['m', 'z']);
    expect(a.add('new', 1, 1600, 4, out)).toBe('unknown');
    a.add('m', 4, 1700, 5, out);
    expect(out.map((v) => [...v.values])).toEqual([[4, 3]]);
  });
});
