import { describe, expect, it } from 'vitest';
import { analyticsSchema } from './schema.js';

function problems(rules: unknown): string[] {
  const r = analyticsSchema.safeParse(rules);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('analytics rules schema', () => {
  it('accepts the contract shape and fills in defaults', () => {
    const [rule] = analyticsSchema.parse([{ name: 'temp', match: 'sensors/+/temp', field: 'value', detector: 'auto' }]);
    expect(rule).toMatchObject({ name: 'temp', detector: 'auto', anomalyTopic: '{topic}/anomaly', maxKeys: 1000, lateness: 0, windows: [], actions: [] });
    expect(analyticsSchema.parse(undefined)).toEqual([]);
  });

  it('accepts detectors with options, windows and actions', () => {
    const [rule] = analyticsSchema.parse([
      {
        name: 'pump',
        match: 'plant/pump/#',
        detector: [{ type: 'threshold', high: 80, hysteresis: 2 }, { type: 'gap', interval: '5s' }, 'change-point'],
        windows: [{ type: 'hopping', size: '1m', hop: '10s', aggregates: ['mean', 'p95'], lateness: '5s' }],
        actions: [{ topic: 'plant/pump/stop', payload: 'STOP', minScore: 0.8, minInterval: '30s' }],
      },
    ]);
    expect(rule.windows[0]).toMatchObject({ size: 60_000, hop: 10_000, lateness: 5000 });
    expect(rule.actions[0].minInterval).toBe(30_000);
  });

  it('names the rule in every problem', () => {
    expect(problems([{ name: 'temp', match: 'a/#/b', detector: 'magic' }])).toEqual([
      expect.stringMatching(/^0\.match: rule "temp": .*topic filter/),
      expect.stringMatching(/^0\.detector: rule "temp": /),
    ]);
    expect(problems([{ name: 'ok', match: '#' }, { name: 'bad', match: '#', detector: { type: 'zscore', window: 2 } }])).toEqual([
      expect.stringMatching(/^1\.detector\.window: rule "bad": /),
    ]);
    expect(problems([{ name: 'x', match: '#', colour: 'red' }])).toEqual([expect.stringMatching(/rule "x": .*colour/)]);
    // In a list, each bad detector is named by its index.
    expect(problems([{ name: 'l', match: '#', detector: ['auto', { type: 'zscore', window: 1 }, 'bogus'] }])).toEqual([
      expect.stringMatching(/^0\.detector\.1\.window: rule "l": /),
      '0.detector.2: rule "l": is not a detector: use one of auto, threshold, rate-of-change, flatline, gap, zscore, ewma, spike-and-dip, change-point, multivariate, or {type: NAME, ...options}',
    ]);
    expect(problems([{ match: '#' }])).toEqual([expect.stringMatching(/^0\.name: rule #1: /)]);
  });

  it('checks what a detector, window or action needs', () => {
    expect(problems([{ name: 't', match: '#', detector: { type: 'threshold' } }])).toEqual(['0.detector: rule "t": a threshold detector needs high, low or both']);
    expect(problems([{ name: 't', match: '#', detector: { type: 'threshold', low: 5, high: 1 } }])).toEqual(['0.detector: rule "t": low (5) must be below high (1)']);
    expect(problems([{ name: 'w', match: '#', windows: [{ type: 'hopping', size: '1m' }] }])).toEqual(['0.windows.0.hop: rule "w": a hopping window needs a positive hop']);
    expect(problems([{ name: 'w', match: '#', windows: [{ type: 'session' }] }])).toEqual(['0.windows.0.gap: rule "w": a session window needs a positive gap']);
    expect(problems([{ name: 'w', match: '#', windows: [{ type: 'tumbling', size: '1m', aggregates: ['median'] }] }])).toEqual([
      expect.stringMatching(/^0\.windows\.0\.aggregates\.0: rule "w": is not an aggregate/),
    ]);
    expect(problems([{ name: 'a', match: '#', actions: [{ topic: 'x/+' }] }])).toEqual(['0.actions.0.topic: rule "a": is not a valid MQTT topic (no + or #)']);
    expect(problems([{ name: 'a', match: '#', actions: [{}] }])).toEqual(['0.actions.0: rule "a": an action has either a topic (a message) or a write']);
    expect(problems([{ name: 'a', match: '#', actions: [{ topic: 'x', write: { driver: 'd', point: 'p', value: 1 } }] }])).toHaveLength(1);
    expect(problems([{ name: 'a', match: '#', actions: [{ write: { driver: 'd', point: 'p', value: 0 }, minInterval: '1m' }] }])).toEqual([]);
    expect(problems([{ name: 'd', match: '#' }, { name: 'd', match: 'x' }])).toEqual(['1.name: rule "d": duplicate rule name']);
  });
});
