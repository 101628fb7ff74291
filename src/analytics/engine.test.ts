import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { EventInput } from '../core/event.js';
import { tempDir } from '../../test/helpers/peers.js';
import { silentLogger } from '../core/log.js';
import { AnalyticsEngine, type ObservedEvent } from './engine.js';
import { analyticsSchema } from './schema.js';

function engine(rules: unknown[], clock = { now: 0 }) {
  const published: { topic: string; payload: string }[] = [];
  const emitted: EventInput[] = [];
  const registry = new Registry();
  const e = new AnalyticsEngine(analyticsSchema.parse(rules), {
    logger: silentLogger,
    registry,
    publishLocal: (topic, payload) => published.push({ topic, payload }),
    emit: (events) => emitted.push(...events),
    tickMs: 0,
    now: () => clock.now,
  });
  return { e, published, emitted, registry, clock };
}

let seq = 0;
function reading(topic: string, payload: unknown, ts: number, deviceTs?: number): ObservedEvent {
  return { seq: ++seq, ts, topic, payload, kind: 'reading', deviceTs };
}

const anomalies = (out: EventInput[]) => out.filter((e) => e.kind === 'anomaly');

describe('AnalyticsEngine', () => {
  it('catches a spike, a flatline and a dropout within one reading, and closes the loop locally', () => {
    const { e, published, emitted, clock } = engine([
      {
        name: 'tank',
        match: 'plant/+/temp',
        detector: ['auto', { type: 'flatline', count: 5 }, { type: 'gap', factor: 3 }],
        actions: [{ topic: 'plant/alarm', payload: { cmd: 'on', why: '{reason}', at: '{topic}' }, minInterval: '1m' }],
      },
    ]);
    const found: { i: number; detector: string }[] = [];
    const feed = (i: number, x: number) => {
      clock.now = i * 1000;
      for (const a of anomalies(e.observe([reading('plant/tank1/temp', { value: x, unit: '°C' }, clock.now)]))) {
        found.push({ i, detector: (a.payload as { detector: string }).detector });
      }
    };
    let noise = 1;
    const jitter = () => {
      noise = (Math.imul(noise, 1664525) + 1013904223) >>> 0;
      return (noise / 2 ** 32) * 0.6 - 0.3;
    };
    let i = 0;
    for (; i < 300; i++) feed(i, 20 + 5 * Math.sin((2 * Math.PI * i) / 50) + jitter());
    expect(found).toEqual([]);
    feed(i++, 60); // spike
    expect(found).toEqual([{ i: 300, detector: 'auto' }]);
    for (let k = 0; k < 5; k++) feed(i++, 21.5); // stuck: the 5th identical reading completes the flatline
    expect(found.filter((f) => f.detector === 'flatline')).toEqual([{ i: 305, detector: 'flatline' }]);
    // Dropout: nothing comes; the clock finds the gap once 3 intervals have passed.
    expect(e.tick(305_000 + 2900)).toEqual([]);
    const gap = e.tick(305_000 + 3100);
    expect(gap).toHaveLength(2);
    expect(gap[1]).toMatchObject({ kind: 'anomaly', topic: 'plant/tank1/temp/anomaly', source: 'analytics' });
    expect(gap[1].payload).toMatchObject({ rule: 'tank', detector: 'gap', topic: 'plant/tank1/temp', value: 21.5 });
    expect(gap[0].payload).toMatchObject({ detector: 'auto', reason: expect.stringMatching(/^no reading for 3\.1 s/) });
    expect(emitted).toEqual(gap);
    // One local action message: the spike; the flatline and the gap came within the action's minInterval.
    expect(published).toHaveLength(1);
    expect(published[0].topic).toBe('plant/alarm');
    expect(JSON.parse(published[0].payload)).toEqual({ cmd: 'on', why: 'value 60 is above anything seen before', at: 'plant/tank1/temp' });
    const st = e.status();
    // auto saw the dropout too (silence beyond 3× the longest interval), and reported the stuck
    // value not at all: it came within its rest period after the spike.
    expect(st.total).toBe(4);
    expect(st.byDetector).toEqual({ auto: 2, flatline: 1, gap: 1 });
    expect(st.rules[0]).toMatchObject({ actionsPublished: 1, actionsSuppressed: 3 });
    e.close();
  });

  it('anomaly events carry detector, score, reason, value, window and the source seq', () => {
    const { e } = engine([{ name: 'hi', match: 'a/#', field: 'm.v', detector: { type: 'threshold', high: 10 }, anomalyTopic: 'alerts/{rule}' }]);
    const ev = reading('a/b', { m: { v: 12 } }, 5000);
    const [a] = e.observe([ev]);
    expect(a).toMatchObject({ kind: 'anomaly', topic: 'alerts/hi', source: 'analytics' });
    expect(a.payload).toMatchObject({ rule: 'hi', detector: 'threshold', value: 12, topic: 'a/b', sourceSeq: ev.seq, sourceTs: 5000, window: { limit: 10 } });
    const p = a.payload as { score: number; reason: string };
    expect(p.score).toBeGreaterThan(0);
    expect(p.score).toBeLessThanOrEqual(1);
    expect(p.reason).toBe('value 12 is above the high limit 10');
  });

  it('routes by MQTT wildcards, keys per topic and ignores derived events', () => {
    const { e } = engine([{ name: 'r', match: 's/+/t', detector: { type: 'threshold', high: 1 } }]);
    const out = e.observe([
      reading('s/a/t', 5, 1),
      reading('s/b/t', 5, 1), // another key: its own alarm state
      reading('s/a/t', 5, 2), // same excursion: no new anomaly
      reading('s/a/t/x', 5, 3),
      reading('x/a/t', 5, 3),
      { ...reading('s/c/t', 5, 3), kind: 'anomaly' },
    ]);
    expect(out.map((o) => (o.payload as { topic: string }).topic)).toEqual(['s/a/t', 's/b/t']);
    expect(e.status().rules[0].keys).toBe(2);
  });

  it('counts payloads without a number and goes on', () => {
    const { e, registry } = engine([{ name: 'r', match: '#', detector: { type: 'threshold', high: 1 } }]);
    const out = e.observe([reading('t', 'hello', 1), reading('t', { value: 'n/a' }, 2), reading('t', '7', 3), reading('t', { value: true }, 4)]);
    expect(out).toHaveLength(1); // "7" counts as 7; true is 1, not above 1
    expect(e.status().rules[0].notNumeric).toBe(2);
    return registry.getSingleMetricAsString('sluice_analytics_skipped_total').then((text) => {
      expect(text).toContain('sluice_analytics_skipped_total{rule="r",reason="not_numeric"} 2');
    });
  });

  it('isolates a detector that throws: counted, reset, intake goes on', () => {
    const { e } = engine([{ name: 'r', match: '#', detector: [{ type: 'threshold', high: 1 }, 'zscore'] }]);
    e.observe([reading('t', 0, 1)]);
    // Break the zscore detector of key "t" from the inside.
    const keys = (e as unknown as { rules: { keys: Map<string, { detectors: { process: () => never }[] }> }[] }).rules[0].keys;
    keys.get('t')!.detectors[1].process = () => {
      throw new Error('boom');
    };
    const out = e.observe([reading('t', 5, 2), reading('t', 0, 3)]);
    expect(anomalies(out)).toHaveLength(1); // the threshold still fires
    expect(e.status().rules[0].errors).toBe(1);
    expect(e.observe([reading('t', 0, 4)])).toEqual([]); // the fresh zscore works
  });

  it('bounds keys per rule, forgetting the least recently seen and emitting its open windows', () => {
    const { e } = engine([
      { name: 'r', match: '#', detector: { type: 'threshold', high: 100 }, maxKeys: 2, windows: [{ type: 'tumbling', size: '1m', aggregates: ['count'] }] },
    ]);
    e.observe([reading('a', 1, 1), reading('b', 1, 2), reading('a', 1, 3)]);
    const out = e.observe([reading('c', 1, 4)]); // evicts b, the least recently seen
    expect(out).toEqual([
      expect.objectContaining({ kind: 'aggregate', topic: 'b/tumbling-60s', payload: expect.objectContaining({ count: 1, topic: 'b' }) }),
    ]);
    expect(e.status().rules[0]).toMatchObject({ keys: 2, evictedKeys: 1 });
  });

  it('aggregates in event time (deviceTs) and counts late readings', () => {
    const { e } = engine([
      { name: 'w', match: 'm', detector: { type: 'threshold', high: 1e9 }, lateness: '5s', windows: [{ name: 'tenS', type: 'tumbling', size: '10s', aggregates: ['count', 'mean', 'max'] }] },
    ]);
    // Gateway ts is 1e6 for all: the windows follow the devices' clocks.
    const out = e.observe([
      reading('m', 1, 1e6, 1000),
      reading('m', 3, 1e6, 9000),
      reading('m', 5, 1e6, 12_000),
      reading('m', 8, 1e6, 8000), // late but within 5 s
      reading('m', 0, 1e6, 16_000), // closes [0, 10 s)
      reading('m', 99, 1e6, 2000), // too late
    ]);
    expect(out).toEqual([
      { source: 'analytics', kind: 'aggregate', topic: 'm/tenS', payload: { rule: 'w', window: 'tenS', type: 'tumbling', topic: 'm', start: 0, end: 10_000, count: 3, mean: 4, max: 8 } },
    ]);
    expect(e.status().rules[0].late).toBe(1);
  });

  it('without emit, clock-found events wait for the next observe()', () => {
    const clock = { now: 0 };
    const e = new AnalyticsEngine(analyticsSchema.parse([{ name: 'g', match: '#', detector: { type: 'gap', interval: '1s' } }]), {
      logger: silentLogger,
      registry: new Registry(),
      publishLocal: () => {},
      tickMs: 0,
      now: () => clock.now,
    });
    e.observe([reading('s', 1, 0)]);
    e.tick(10_000);
    const out = e.observe([]);
    expect(out.map((o) => (o.payload as { detector: string }).detector)).toEqual(['gap']);
  });

  it('exposes sluice_anomalies_total{detector} on the registry it was given, across a rebuild', async () => {
    const registry = new Registry();
    const ctx = { logger: silentLogger, registry, publishLocal: () => {}, tickMs: 0 };
    const rules = analyticsSchema.parse([{ name: 'r', match: '#', detector: { type: 'threshold', high: 1 } }]);
    new AnalyticsEngine(rules, ctx).observe([reading('x', 2, 1)]);
    new AnalyticsEngine(rules, ctx).observe([reading('y', 2, 1)]); // a reconfigured gateway builds a new engine
    expect(await registry.getSingleMetricAsString('sluice_anomalies_total')).toContain('sluice_anomalies_total{detector="threshold"} 2');
  });

  it('adopt() carries detector state and totals across a hot reload where the rule did not change', () => {
    const rules = (high: number, topic = 'alerts/{topic}') =>
      analyticsSchema.parse([
        { name: 'same', match: 'a', detector: { type: 'flatline', count: 3 }, anomalyTopic: topic },
        { name: 'changed', match: 'b', detector: { type: 'threshold', high } },
      ]);
    const ctx = { logger: silentLogger, registry: new Registry(), publishLocal: () => {}, tickMs: 0 };
    const first = new AnalyticsEngine(rules(1), ctx);
    first.observe([reading('a', 5, 1), reading('a', 5, 2), reading('b', 2, 3)]);
    const next = new AnalyticsEngine(rules(10, 'x/{topic}'), ctx);
    next.adopt(first);
    first.close();
    // The flatline run of 2 survived the reload: the 3rd equal reading completes it.
    const out = next.observe([reading('a', 5, 4), reading('b', 2, 5)]);
    expect(out.map((e) => e.topic)).toEqual(['x/a']);
    expect(next.status()).toMatchObject({ total: 2, byDetector: { threshold: 1, flatline: 1 } });
    expect(next.status().rules.map((r) => r.keys)).toEqual([1, 1]);
  });

  it('keeps detector state across a restart in its state file, only for unchanged rules', () => {
    const dir = tempDir('sluice-analytics-state-');
    try {
      const stateFile = join(dir.path, 'analytics-state.json');
      const ctx = { logger: silentLogger, registry: new Registry(), publishLocal: () => {}, tickMs: 0, stateFile };
      const rules = (count: number) =>
        analyticsSchema.parse([
          { name: 'kept', match: 'a', detector: { type: 'flatline', count: 3 } },
          { name: 'edited', match: 'b', detector: { type: 'flatline', count } },
        ]);
      const first = new AnalyticsEngine(rules(3), ctx);
      first.observe([reading('a', 5, 1), reading('a', 5, 2), reading('b', 7, 3), reading('b', 7, 4)]);
      first.close();
      expect(existsSync(stateFile)).toBe(true);
      let second = new AnalyticsEngine(rules(4), ctx);
      // "kept" resumes its run of two: the third 5 completes it. "edited" changed: it starts over.
      const out = second.observe([reading('a', 5, 5), reading('b', 7, 6)]);
      expect(out.map((e) => (e.payload as { rule: string }).rule)).toEqual(['kept']);
      second.close();
      // The gateway's own downtime is no sensor silence: a restored gap detector does not report it.
      const gapRules = analyticsSchema.parse([{ name: 'g', match: 'g', detector: { type: 'gap', interval: '1s' } }]);
      const before = new AnalyticsEngine(gapRules, ctx);
      before.observe([reading('g', 1, 1000), reading('g', 1, 2000)]);
      before.close();
      const after = new AnalyticsEngine(gapRules, ctx);
      expect(after.tick(600_000)).toEqual([]);
      expect(after.observe([reading('g', 1, 600_000)])).toEqual([]);
      expect(after.tick(610_000).map((e) => (e.payload as { detector: string }).detector)).toEqual(['gap']);
      after.close();
      second = new AnalyticsEngine(rules(4), ctx);
      second.close();
      writeFileSync(stateFile, '{"version":1,"rules":{"kept":{"config":');
      const third = new AnalyticsEngine(rules(4), ctx); // damaged: starts fresh, no throw
      expect(third.observe([reading('a', 5, 7)])).toEqual([]);
      third.close();
    } finally {
      dir.cleanup();
    }
  });
});
