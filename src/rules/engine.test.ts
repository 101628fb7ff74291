import { readFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { configProblems } from '../../test/helpers/config.js';
import { parseConfigText, validateConfig } from '../config/load.js';
import type { EventInput } from '../core/event.js';
import { silentLogger } from '../core/log.js';
import { RulesEngine } from './engine.js';
import type { RuleEvent } from './event.js';
import type { RulesConfig } from './schema.js';

/** The example of the issue, verbatim. */
const ISSUE_EXAMPLE = readFileSync(new URL('./examples/issue.yaml', import.meta.url), 'utf8');


function engine(rules: unknown, now = { t: 0 }) {
  const config = validateConfig({ rules }).rules as RulesConfig;
  const registry = new Registry();
  const e = new RulesEngine(config, { logger: silentLogger, registry, tickMs: 0, now: () => now.t });
  return { e, registry, now };
}

let seq = 0;
function ev(topic: string, payload: unknown, ts: number, kind = 'reading'): RuleEvent {
  return { seq: ++seq, ts, topic, payload, kind, source: 'test' };
}

describe('rules config', () => {
  it('takes the example of the issue as it is', () => {
    const config = validateConfig(parseConfigText(ISSUE_EXAMPLE));
    expect(config.rules.map((r) => r.name)).toEqual(['power', 'heartbeat-lost', 'door-then-heat']);
    expect(config.uplinks[0].where).toBe('has(payload.value) && payload.value > 50.0');
  });

  it('names a broken expression by its config path', () => {
    const steps = [
      { match: 'rooms/+/door', where: 'payload.open == true' },
      { match: 'rooms/+/temp', where: 'payload.value >= 30.0 && frist.payload.open' },
    ];
    expect(configProblems({ rules: [{ name: 'a', sequence: { within: '1m', steps } }] })).toEqual([
      expect.stringMatching(/^rules\[0\]\.sequence\.steps\[1\]\.where: uses unknown name "frist"/),
    ]);
    expect(configProblems({ rules: [{ name: 'a', match: 'x', derive: { p: 'payload.v *' } }] })).toEqual([
      expect.stringMatching(/^rules\[0\]\.derive\.p: is not a CEL expression/),
    ]);
    // `first` exists only after step 1.
    expect(
      configProblems({ rules: [{ name: 'a', sequence: { within: '1m', steps: [{ match: 'a', where: 'first.x' }, { match: 'b' }] } }] })[0],
    ).toMatch(/^rules\[0\]\.sequence\.steps\[0\]\.where: uses unknown name "first" \(`first` exists only/);
    expect(configProblems({ uplinks: [{ name: 'u', type: 'mqtt', url: 'mqtt://h', where: 'payload.x >' }] })[0]).toMatch(
      /^uplinks\[0\]\.where: is not a CEL expression/,
    );
    expect(configProblems({ rules: [{ name: 'a', match: 'x' }] })[0]).toMatch(/^rules\[0\]: needs one of derive, drop/);
    expect(configProblems({ rules: [{ name: 'a', match: 'x', drop: 'true' }, { name: 'a', match: 'y', drop: 'true' }] })[0]).toMatch(
      /^rules\[1\]\.name: duplicate name "a"/,
    );
  });
});

describe('rules engine', () => {
  it('derives power = v × i as a derived event with the source seq', () => {
    const { e } = engine([{ name: 'power', match: 'plant/+/meter', derive: { power: 'payload.v * payload.i' } }]);
    const x = ev('plant/a/meter', { v: 230, i: 2.5 }, 1000);
    const out = e.observe([x, ev('plant/a/other', { v: 1, i: 1 }, 1000)]);
    expect(out).toEqual([
      expect.objectContaining({
        kind: 'derived',
        topic: 'plant/a/meter/power',
        payload: { power: 575, rule: 'power', sourceSeq: x.seq, sourceTopic: 'plant/a/meter' },
      }),
    ]);
  });

  it('compares a JSON integer with a double: payload.value >= 30.0 holds for {"value": 30}', () => {
    const { e } = engine([{ name: 'd', match: 't', where: 'payload.value >= 30.0 && payload.value == 30', derive: { x: 'payload.value * 2.0' } }]);
    const out = e.observe([ev('t', JSON.parse('{"value": 30}'), 1)]);
    expect((out[0].payload as { x: number }).x).toBe(60);
  });

  it('sequence: door then heat within 60 s in the same room raises one alarm, not for another room', () => {
    const config = validateConfig(parseConfigText(ISSUE_EXAMPLE));
    const e = new RulesEngine(config.rules, { logger: silentLogger, registry: new Registry(), tickMs: 0, now: () => 0 });
    const alarms: EventInput[] = [];
    const feed = (...xs: RuleEvent[]) => alarms.push(...e.observe(xs).filter((o) => o.kind === 'alarm'));
    feed(ev('rooms/a/door', { open: true }, 1_000));
    feed(ev('rooms/b/temp', { value: 35 }, 2_000)); // another room
    feed(ev('rooms/a/temp', { value: 29.5 }, 3_000)); // not hot yet
    const hot = ev('rooms/a/temp', { value: 30 }, 20_000);
    feed(hot);
    feed(ev('rooms/a/temp', { value: 31 }, 21_000)); // the match was used up: no second alarm
    expect(alarms).toHaveLength(1);
    expect(alarms[0]).toMatchObject({
      kind: 'alarm',
      topic: 'alarms/door-then-heat',
      payload: { rule: 'door-then-heat', key: 'a', pattern: 'sequence', sourceSeq: hot.seq },
    });
    // Too late: 61 s after the door.
    feed(ev('rooms/c/door', { open: true }, 100_000));
    feed(ev('rooms/c/temp', { value: 40 }, 161_001));
    expect(alarms).toHaveLength(1);
  });

  it('absence: a heartbeat missing for 10 s raises one alarm per silence, per topic', () => {
    const now = { t: 0 };
    const { e } = engine([{ name: 'hb', absence: { match: 'plant/+/heartbeat', within: '10s', key: 'topic' } }], now);
    e.observe([ev('plant/a/heartbeat', 1, 0), ev('plant/b/heartbeat', 1, 0)]);
    now.t = 9_000;
    e.observe([ev('plant/b/heartbeat', 1, 9_000)]);
    expect(e.tick(9_500)).toEqual([]);
    const out = e.tick(10_001);
    expect(out).toEqual([expect.objectContaining({ kind: 'alarm', payload: expect.objectContaining({ rule: 'hb', key: 'plant/a/heartbeat', pattern: 'absence' }) })]);
    expect(e.tick(15_000)).toEqual([]);
    expect(e.tick(19_001)).toHaveLength(1); // b's own silence
    e.observe([ev('plant/a/heartbeat', 1, 30_000)]); // re-armed
    expect(e.tick(40_001)).toHaveLength(1);
  });

  it('absence with then: A not followed by B', () => {
    const { e } = engine([{ name: 'ack', absence: { match: 'cmd/+', then: { match: 'ack/+', where: 'segments[1] == first.segments[1]' }, key: 'segments[1]', within: '5s' } }]);
    e.observe([ev('cmd/1', {}, 0), ev('cmd/2', {}, 0), ev('ack/1', {}, 1_000)]);
    const out = e.tick(5_001);
    expect(out.map((o) => (o.payload as { key: string }).key)).toEqual(['2']);
  });

  it('count: at least 3 matching events within 10 s fire once per excursion, with window aggregates', () => {
    const { e } = engine([
      { name: 'vib', count: { match: 'm/+/vib', where: 'payload.rms > 2.0', within: '10s', atLeast: 3, value: 'payload.rms', having: 'window.max >= 4.0' } },
    ]);
    const at = (t: number, rms: number) => e.observe([ev('m/1/vib', { rms }, t)]).filter((o) => o.kind === 'alarm');
    expect(at(0, 3)).toEqual([]);
    expect(at(1000, 1)).toEqual([]); // not matching
    expect(at(2000, 3)).toEqual([]);
    const fired = at(3000, 4);
    expect(fired).toHaveLength(1);
    expect(fired[0].payload).toMatchObject({ pattern: 'count', window: { count: 3, max: 4, sum: 10 } });
    expect(at(4000, 5)).toEqual([]); // same excursion
    expect(at(30_000, 5)).toEqual([]); // the window slid: 1 event
  });

  it('drop: removes events before storage and counts them', async () => {
    const { e, registry } = engine([{ name: 'quiet', match: 'm/+/vib', drop: 'payload.rms < 0.5' }]);
    const kept = e.keep([
      { source: 's', topic: 'm/1/vib', payload: { rms: 0.1 } },
      { source: 's', topic: 'm/1/vib', payload: { rms: 3 } },
      { source: 's', topic: 'other', payload: { rms: 0 } },
    ]);
    expect(kept.map((k) => k.topic)).toEqual(['m/1/vib', 'other']);
    expect(e.status()[0]).toMatchObject({ name: 'quiet', kind: 'drop', matches: 1 });
    expect(await registry.getSingleMetricAsString('sluice_rule_dropped_total')).toContain('sluice_rule_dropped_total{rule="quiet"} 1');
  });

  it('bounds keys and partial matches, counting evictions', async () => {
    const { e, registry } = engine([
      { name: 's', maxKeys: 2, maxPending: 2, sequence: { key: 'segments[1]', within: '1m', steps: [{ match: 'd/+' }, { match: 't/+' }] } },
    ]);
    e.observe([ev('d/1', 1, 0), ev('d/2', 1, 0), ev('d/3', 1, 0), ev('d/3', 1, 1), ev('d/3', 1, 2)]);
    expect(e.status()[0]).toMatchObject({ keys: 2, pending: 3, evictedKeys: 1, evictedPending: 1 });
    e.tick(0);
    const text = await registry.getSingleMetricAsString('sluice_rule_evictions_total');
    expect(text).toContain('what="keys"} 1');
    expect(text).toContain('what="pending"} 1');
  });

  it('isolates a rule that throws and disables it after repeated throws', () => {
    const { e } = engine([
      { name: 'bad', match: 'x', derive: { a: 'payload' } },
      { name: 'good', match: 'x', derive: { a: 'payload' } },
    ]);
    (e.rules[0] as unknown as { derive: [string, { evaluate(): never }][] }).derive = [['a', { evaluate: () => { throw new Error('boom'); } }]];
    for (let i = 0; i < 6; i++) expect(e.observe([ev('x', i, i)]).map((o) => (o.payload as { rule: string }).rule)).toEqual(['good']);
    expect(e.status()[0]).toMatchObject({ name: 'bad', disabled: true, failures: 5 });
    expect(e.status()[1]).toMatchObject({ disabled: false, matches: 6 });
  });

  it('counts an expression that fails on an event as no match', () => {
    const { e } = engine([{ name: 'd', match: 'x', where: 'payload.value > 1.0', derive: { a: 'payload.value' } }]);
    expect(e.observe([ev('x', { other: 1 }, 0), ev('x', 5, 0)])).toEqual([]);
    expect(e.status()[0].evalErrors).toBe(2);
  });

  it('keeps the state of an unchanged rule across a reload, and drops a changed one', () => {
    const seqRule = { name: 's', sequence: { key: 'segments[1]', within: '1m', steps: [{ match: 'd/+' }, { match: 't/+' }] } };
    const { e } = engine([seqRule, { name: 'c', count: { match: 'c', within: '1m', atLeast: 2 } }]);
    e.observe([ev('d/1', 1, 0), ev('c', 1, 0)]);
    const next = new RulesEngine(validateConfig({ rules: [seqRule, { name: 'c', count: { match: 'c', within: '1m', atLeast: 3 } }] }).rules, {
      logger: silentLogger,
      registry: new Registry(),
      tickMs: 0,
    });
    next.adopt(e);
    expect(next.observe([ev('t/1', 1, 10), ev('c', 1, 10)]).map((o) => (o.payload as { rule: string }).rule)).toEqual(['s']);
    expect(next.status()[1]).toMatchObject({ pending: 1 });
  });

  it('never looks at its own alarms and derived events', () => {
    const { e } = engine([{ name: 'd', match: '#', derive: { a: 'true' } }]);
    expect(e.observe([ev('x', 1, 0, 'alarm'), ev('y', 1, 0, 'derived')])).toEqual([]);
  });

  it('publishes and writes through the write path, rate-limited; without a write path the write is counted as unavailable', async () => {
    const rules = [
      {
        name: 'bursts',
        count: { match: 'm/+/vib', key: 'segments[1]', within: '10s', atLeast: 2 },
        publish: { topic: 'plant/{key}/stop', minInterval: '1m' },
        write: { target: 'plc1/{key}/run', value: 'false', minInterval: '1m' },
      },
    ];
    const config = validateConfig({ rules }).rules;
    const published: [string, unknown][] = [];
    const written: [string, unknown, object][] = [];
    const registry = new Registry();
    const e = new RulesEngine(config, {
      logger: silentLogger,
      registry,
      tickMs: 0,
      now: () => 0,
      publishLocal: (topic, payload) => published.push([topic, JSON.parse(payload)]),
      writer: { write: async (target, value, origin) => void written.push([target, value, origin]) },
    });
    e.observe([ev('m/1/vib', 1, 0), ev('m/1/vib', 1, 1), ev('m/2/vib', 1, 2), ev('m/2/vib', 1, 3)], 0);
    await new Promise((r) => setImmediate(r));
    expect(published).toEqual([['plant/1/stop', expect.objectContaining({ rule: 'bursts', key: '1', pattern: 'count' })]]);
    expect(written).toEqual([['plc1/1/run', false, { rule: 'bursts', key: '1' }]]);
    expect(e.status()[0].actions).toEqual({ published: 1, written: 1, suppressed: 2, failed: 0, unavailable: 0 });

    const bare = new RulesEngine(config, { logger: silentLogger, registry: new Registry(), tickMs: 0, now: () => 0 });
    bare.observe([ev('m/1/vib', 1, 0), ev('m/1/vib', 1, 1)], 0);
    expect(bare.status()[0].actions).toMatchObject({ written: 0, unavailable: 2 });
  });
});

