import { join } from 'node:path';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { PUMP_SENSORS, simulatedPump } from '../../test/helpers/pump.js';
import { tempDir } from '../../test/helpers/peers.js';
import type { EventInput } from '../core/event.js';
import { silentLogger } from '../core/log.js';
import { AnalyticsEngine, type ObservedEvent } from './engine.js';
import { analyticsSchema } from './schema.js';

const RULE = { name: 'pumps', match: 'pump/+/#', group: { align: '200ms' }, detector: { type: 'multivariate', warmup: 240 } };

function engine(rules: unknown[], stateFile?: string) {
  const registry = new Registry();
  const e = new AnalyticsEngine(analyticsSchema.parse(rules), { logger: silentLogger, registry, publishLocal: () => {}, tickMs: 0, stateFile });
  return { e, registry };
}

/** One pump's second: each sensor on its own topic, a few ms apart, as separate devices publish. */
function second(pump: string, i: number, r: Record<string, number>, seq: { n: number }): ObservedEvent[] {
  return PUMP_SENSORS.map((k, j) => ({ seq: ++seq.n, ts: i * 1000 + j * 7, topic: `pump/${pump}/${k}`, payload: { value: r[k] }, kind: 'reading' }));
}

describe('vector rules (group)', () => {
  it('judges each pump as a vector and reports the correlation break with per-sensor contributions', () => {
    const { e, registry } = engine([RULE]);
    const seven = simulatedPump(7);
    const eight = simulatedPump(8);
    const seq = { n: 0 };
    const found: EventInput[] = [];
    for (let i = 0; i < 1500; i++) {
      found.push(...e.observe([...second('7', i, seven(i, i >= 1200), seq), ...second('8', i, eight(i), seq)]));
    }
    const anomalies = found.filter((x) => x.kind === 'anomaly');
    const first = anomalies.find((a) => (a.payload as { sourceTs: number }).sourceTs >= 1_200_000);
    expect(first).toBeDefined();
    expect(first!.topic).toBe('pump/7/anomaly');
    const p = first!.payload as { detector: string; topic: string; contributions: Record<string, number>; value: Record<string, number>; reason: string };
    expect(p.detector).toBe('multivariate');
    expect(p.topic).toBe('pump/7');
    expect(Object.keys(p.contributions).sort()).toEqual([...PUMP_SENSORS]);
    expect(Object.entries(p.contributions).sort((a, b) => b[1] - a[1])[0][0]).toBe('flow');
    expect(Object.keys(p.value).sort()).toEqual([...PUMP_SENSORS]);
    expect(p.reason).toMatch(/^pump\/7: .*moved most: flow \d+ %/);
    // The healthy pump: at most a stray alarm; the faulty one is found within a minute of the break.
    expect(anomalies.filter((a) => a.topic === 'pump/8/anomaly').length).toBeLessThanOrEqual(2);
    expect((first!.payload as { sourceTs: number }).sourceTs - 1_200_000).toBeLessThan(60_000);
    expect(e.status().rules[0].keys).toBe(2);
    return registry.metrics().then((m) => expect(m).toMatch(/sluice_anomalies_total\{detector="multivariate"\} [1-9]/));
  });

  it('reads listed fields as variables, counts newcomers and keeps its state across a restart', async () => {
    const dir = tempDir('sluice-vec-');
    try {
      const rule = { name: 'motor', match: 'motor/+/#', group: { fields: ['a', 'b'], align: '1s' } };
      const file = join(dir.path, 'state.json');
      const one = engine([rule], file);
      let seq = 0;
      for (let i = 0; i < 300; i++) {
        one.e.observe([{ seq: ++seq, ts: i * 1000, topic: 'motor/1/x', payload: { a: Math.sin(i / 5), b: Math.sin(i / 5) * 2 + 0.01 * (i % 3), c: 9 }, kind: 'reading' }]);
      }
      one.e.observe([{ seq: ++seq, ts: 300_000, topic: 'motor/1/y', payload: { a: 1 }, kind: 'reading' }]);
      expect(await one.registry.metrics()).toMatch(/sluice_analytics_skipped_total\{rule="motor",reason="unknown_variable"\} 1/);
      one.e.close();
      const two = engine([rule], file);
      // Restored: judged at once (no new warm-up); a break of the a–b link is found on the first vector.
      const out = two.e.observe([{ seq: ++seq, ts: 301_000, topic: 'motor/1/x', payload: { a: 0.9, b: -1.8 }, kind: 'reading' }]);
      const a = out.find((x) => x.kind === 'anomaly');
      expect(a?.payload).toMatchObject({ topic: 'motor/1', contributions: { 'x.a': expect.any(Number), 'x.b': expect.any(Number) } });
      two.e.close();
    } finally {
      dir.cleanup();
    }
  });

  it('makes one vector of all fields of pump/7/# (the README example)', () => {
    const rule = { name: 'pump7', match: 'pump/7/#', group: { fields: ['current', 'speed', 'flow', 'pressure'], align: '500ms' }, detector: { type: 'multivariate', warmup: 60 } };
    const { e } = engine([rule]);
    let seq = 0;
    const out: EventInput[] = [];
    for (let i = 0; i < 200; i++) {
      const load = Math.sin(i / 9);
      const t = i * 1000;
      const flow = i >= 150 ? 8.4 - 0.6 * load : 8.4 + 0.6 * load;
      out.push(...e.observe([{ seq: ++seq, ts: t, topic: 'pump/7/motor', payload: { current: 9 + load + 0.01 * Math.cos(i * 7), speed: 1480 + 5 * Math.sin(i * 3) }, kind: 'reading' }]));
      out.push(...e.observe([{ seq: ++seq, ts: t + 40, topic: 'pump/7/line', payload: { flow, pressure: 3.4 + 0.2 * load + 0.005 * Math.sin(i * 5) }, kind: 'reading' }]));
    }
    const a = out.find((x) => x.kind === 'anomaly');
    expect(a?.topic).toBe('pump/7/anomaly');
    const p = a!.payload as { sourceTs: number; contributions: Record<string, number> };
    expect(Object.keys(p.contributions)).toEqual(['line.flow', 'line.pressure', 'motor.current', 'motor.speed']);
    expect(p.sourceTs).toBeGreaterThanOrEqual(150_000);
  });

  it('refuses a group rule with another detector or windows, and multivariate without group', () => {
    const bad = (rule: object) => analyticsSchema.safeParse([{ name: 'r', match: 'a/#', ...rule }]).error?.issues.map((i) => i.message);
    expect(bad({ group: {}, detector: 'auto' })).toEqual(['rule "r": a rule with group takes one detector: multivariate']);
    expect(bad({ detector: 'multivariate' })?.[0]).toMatch(/needs group/);
    expect(bad({ group: {}, windows: [{ type: 'tumbling', size: '1m' }] })?.[0]).toMatch(/windows are per topic/);
    expect(analyticsSchema.parse([{ name: 'r', match: 'a/#', group: {} }])[0].detector).toBe('multivariate');
    expect(analyticsSchema.parse([{ name: 'r', match: 'a/#' }])[0].detector).toBe('auto');
  });
});
