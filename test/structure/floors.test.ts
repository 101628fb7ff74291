import { describe, expect, it } from 'vitest';
import { floorOf, upwardImports } from './floors.js';

describe('floors', () => {
  it('places files on their floor', () => {
    expect(floorOf('src/core/event.ts')).toBe(1);
    expect(floorOf('src/auth/acl.ts')).toBe(2);
    expect(floorOf('uplink/runner.ts')).toBe(3);
    expect(floorOf('src/fleet/index.ts')).toBe(4);
    expect(floorOf('src/gateway.ts')).toBe(5);
  });

  it('every import of production code points down or stays on its floor', () => {
    expect(upwardImports()).toEqual([]);
  });
});
