import { describe, expect, it } from 'vitest';
import { canonicalJson } from './canonical.js';

describe('canonicalJson', () => {
  it('sorts keys at every depth and drops whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: true, y: null }], c: 'x' } })).toBe(
      '{"a":{"c":"x","d":[3,{"y":null,"z":true}]},"b":1}',
    );
  });

  it('gives the same text for the same value whatever the key order or formatting', () => {
    const a = JSON.parse('{"x": 1.50, "y": "é\\u00e9", "z": [1e3]}');
    const b = JSON.parse('{"z":[1000],"y":"éé","x":1.5}');
    expect(canonicalJson(a)).toBe(canonicalJson(b));
  });

  it('leaves out undefined members and refuses values JSON cannot carry', () => {
    expect(canonicalJson({ a: undefined, b: 2 })).toBe('{"b":2}');
    expect(() => canonicalJson({ a: Number.NaN })).toThrow();
    expect(() => canonicalJson([undefined])).toThrow();
    expect(() => canonicalJson(1n)).toThrow();
  });
});
