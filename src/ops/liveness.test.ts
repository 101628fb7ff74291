import { describe, expect, it } from 'vitest';
import { LivenessProbe } from './liveness.js';

describe('liveness', () => {
  it('fails on a ring log that is not writable, and on an event loop stall longer than allowed', async () => {
    let writable = true;
    const probe = new LivenessProbe(() => writable, 100, 60_000);
    try {
      expect(probe.check().ok).toBe(true);
      writable = false;
      expect(probe.check().reasons).toEqual(['the ring log is not open for writing']);
      writable = true;
      // The monitor's timer starts on the next turn of the loop.
      await new Promise((r) => setTimeout(r, 100));
      // Block the loop well past the allowance (a loaded machine only makes the stall longer).
      const until = Date.now() + 400;
      while (Date.now() < until);
      await new Promise((r) => setTimeout(r, 50));
      const c = probe.check();
      expect(c.ok).toBe(false);
      expect(c.reasons[0]).toMatch(/^the event loop stalled for \d+ ms$/);
      expect(c.eventLoopMaxDelayMs).toBeGreaterThanOrEqual(300);
    } finally {
      probe.close();
    }
  });
});
