import { describe, expect, it } from 'vitest';
import { ConditionTracker, type ConditionInput } from './condition.js';

const base = (): ConditionInput => ({
  brokerEnabled: true,
  brokerListening: true,
  buffer: { bytes: 10, maxBytes: 1000, refused: 0, evictedByReason: {} },
  uplinks: [{ name: 'cloud', state: 'idle', connected: true, pendingEvents: 0, lagSeconds: 0, lastError: null, windowOpen: null }],
  drivers: [{ name: 'plc', devices: [{ device: 'unit-1', state: 'up', consecutiveFailures: 0 }] }],
});

describe('condition', () => {
  it('is healthy when data flows', () => {
    expect(new ConditionTracker().judge(base())).toEqual({ state: 'healthy', reasons: [] });
  });

  it('names an uplink down with its backlog and the age of its oldest unsent event', () => {
    const s = base();
    s.uplinks[0] = { ...s.uplinks[0], state: 'backoff', connected: false, pendingEvents: 42, lagSeconds: 600, lastError: 'ECONNREFUSED' };
    const c = new ConditionTracker().judge(s);
    expect(c.state).toBe('degraded');
    expect(c.reasons).toEqual(['uplink cloud is down with 42 events waiting, the oldest 10 min old (ECONNREFUSED)']);
  });

  it('leaves an uplink held by a closed transmit window or disabled out', () => {
    const s = base();
    s.uplinks = [
      { name: 'a', state: 'window-closed', connected: false, pendingEvents: 5, lagSeconds: 9000, lastError: null, windowOpen: false },
      { name: 'b', state: 'disabled', connected: false, pendingEvents: 5, lagSeconds: 9000, lastError: null, windowOpen: null },
    ];
    expect(new ConditionTracker().judge(s).state).toBe('healthy');
  });

  it('flags a connected uplink falling behind, a device down, a nearly full log, a silent broker', () => {
    const s = base();
    s.uplinks[0] = { ...s.uplinks[0], pendingEvents: 9000, lagSeconds: 3600 };
    s.drivers[0].devices[0] = { device: 'unit-1', state: 'down', consecutiveFailures: 7 };
    s.buffer = { bytes: 950, maxBytes: 1000, refused: 0, evictedByReason: {} };
    s.brokerListening = false;
    expect(new ConditionTracker().judge(s).reasons).toEqual([
      'the MQTT broker is not listening: local devices cannot publish',
      'the ring log is 95% full: the oldest undelivered events will soon be evicted or new ones refused',
      'uplink cloud is behind: 9000 events waiting, the oldest 60 min old',
      'driver plc device unit-1 is down (7 failed polls in a row)',
    ]);
  });

  it('reports refusals and capacity evictions while they grow, and for a while after', () => {
    const t = new ConditionTracker(1000);
    const s = base();
    expect(t.judge(s, 0).state).toBe('healthy');
    s.buffer = { bytes: 10, maxBytes: 1000, refused: 3, evictedByReason: { capacity: 5, retention: 100 } };
    expect(t.judge(s, 100).reasons).toEqual([
      'the ring log refused 3 events recently (full, or the disk reserve reached)',
      'the ring log evicted 5 events recently to make room',
    ]);
    expect(t.judge(s, 900).state).toBe('degraded');
    expect(t.judge(s, 1200).state).toBe('healthy');
    s.buffer = { ...s.buffer, evictedByReason: { capacity: 5, retention: 500 } };
    expect(t.judge(s, 1300).state).toBe('healthy');
  });
});
