/**
 * Rules figures: events per second through 20 typical rules (derive, drop, sequence, absence,
 * count over a mixed plant stream, in batches as the gateway hands them), and the per-event cost of
 * one filter expression in CEL beside a hand-written JavaScript predicate doing the same, both on
 * bindings already built and on the uplink `where:` path (parse the stored envelope, then decide).
 * Rounds alternate the two sides so machine noise hits both alike; the median is reported.
 */
import { Registry } from 'prom-client';
import { validateConfig } from '../../../src/config/load.js';
import { silentLogger } from '../../../src/core/log.js';
import { isTrue } from '../../../src/rules/cel.js';
import { RulesEngine } from '../../../src/rules/engine.js';
import { bind, type RuleEvent } from '../../../src/rules/event.js';
import { wherePredicate } from '../../../src/rules/route.js';
import { compiled } from '../../../src/rules/schema.js';
import type { BenchCase, BenchResult } from '../types.js';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (x: number) => Math.round(x * 1000) / 1000;

const RULES = [
  { name: 'power', match: 'plant/+/meter', derive: { power: 'payload.v * payload.i' } },
  { name: 'kwh', match: 'plant/+/meter', derive: { kw: 'payload.v * payload.i / 1000.0' } },
  { name: 'fahrenheit', match: 'plant/+/temp', derive: { f: 'payload.value * 1.8 + 32.0' } },
  { name: 'rename', match: 'plant/+/vib', derive: { mmps: 'payload.rms' } },
  { name: 'pressure-bar', match: 'plant/+/pressure', derive: { bar: 'payload.value / 100000.0' } },
  { name: 'room-f', match: 'rooms/+/temp', where: 'payload.value > 25.0', derive: { f: 'payload.value * 1.8 + 32.0' } },
  { name: 'line', match: 'plant/+/meter', derive: { line: 'segments[1]', va: 'payload.v * payload.i' } },
  { name: 'pf', match: 'plant/+/meter', where: 'has(payload.pf)', derive: { real: 'payload.v * payload.i * payload.pf' } },
  { name: 'quiet-vib', match: 'plant/+/vib', drop: 'payload.rms < 0.05' },
  { name: 'debug', match: 'debug/#', drop: 'true' },
  { name: 'stale', match: 'plant/+/temp', drop: "has(payload.q) && payload.q == 'bad'" },
  { name: 'neg-pressure', match: 'plant/+/pressure', drop: 'payload.value < 0.0' },
  { name: 'door-then-heat', sequence: { key: 'segments[1]', within: '60s', steps: [{ match: 'rooms/+/door', where: 'payload.open == true' }, { match: 'rooms/+/temp', where: 'payload.value >= 30.0 && first.payload.open' }] } },
  { name: 'start-then-vib', sequence: { key: 'segments[1]', within: '30s', steps: [{ match: 'plant/+/state', where: "payload.state == 'start'" }, { match: 'plant/+/vib', where: 'payload.rms > 4.0' }] } },
  { name: 'overheat-then-trip', sequence: { key: 'segments[1]', within: '5m', steps: [{ match: 'plant/+/temp', where: 'payload.value > 90.0' }, { match: 'plant/+/state', where: "payload.state == 'trip'" }] } },
  { name: 'heartbeat', absence: { match: 'plant/+/heartbeat', within: '10s' } },
  { name: 'door-closed', absence: { match: 'rooms/+/door', where: 'payload.open', then: { match: 'rooms/+/door', where: '!payload.open' }, key: 'segments[1]', within: '2m' } },
  { name: 'meter-silent', absence: { match: 'plant/+/meter', within: '1m' } },
  { name: 'vib-bursts', count: { match: 'plant/+/vib', where: 'payload.rms > 2.0', within: '10s', atLeast: 5 } },
  { name: 'hot-rooms', count: { match: 'rooms/+/temp', key: 'segments[1]', within: '1m', atLeast: 3, value: 'payload.value', having: 'window.mean > 28.0' } },
];

function stream(n: number): RuleEvent[] {
  const out: RuleEvent[] = [];
  let s = 42;
  const r = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  for (let i = 0; i < n; i++) {
    const ts = 1_700_000_000_000 + i * 10;
    const unit = Math.floor(r() * 50);
    const k = i % 8;
    const topic = ['plant/%/meter', 'plant/%/temp', 'plant/%/vib', 'plant/%/pressure', 'plant/%/heartbeat', 'rooms/%/door', 'rooms/%/temp', 'plant/%/state'][k].replace('%', String(unit));
    const payload = [
      { v: 230 + r() * 5, i: 2 + r(), pf: 0.9 },
      { value: 20 + r() * 80 },
      { rms: r() * 6 },
      { value: 100_000 + r() * 1000 },
      { up: true },
      { open: r() > 0.5 },
      { value: 20 + r() * 15 },
      { state: r() > 0.9 ? 'trip' : 'start' },
    ][k];
    out.push({ seq: i + 1, ts, topic, payload, kind: 'reading', source: 'bench' });
  }
  return out;
}

const bench: BenchCase = {
  name: 'rules',
  description: 'events/s through 20 typical rules; one CEL filter vs a hand-written JS predicate (ns/event)',
  timeoutMs: 180_000,
  async run(ctx) {
    const n = ctx.quick ? 50_000 : 300_000;
    const rounds = ctx.quick ? 3 : 5;
    const events = stream(n);
    const results: BenchResult[] = [];
    const config = validateConfig({ rules: RULES }).rules;

    // 20 rules, as the gateway drives them: drop rules before storage, the rest after, batches of 100.
    const through = (): number => {
      const engine = new RulesEngine(config, { logger: silentLogger, registry: new Registry(), tickMs: 0, now: () => 0 });
      let out = 0;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < events.length; i += 100) {
        const batch = events.slice(i, i + 100);
        engine.keep(batch.map((e) => ({ source: 'bench', topic: e.topic, payload: e.payload, ts: e.ts })));
        out += engine.observe(batch, batch[0].ts).length;
        if (i % 10_000 === 0) engine.tick(batch[0].ts, batch[0].ts);
      }
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      if (out < 0) throw new Error('unreachable');
      engine.close();
      return events.length / s;
    };
    through(); // JIT warm-up
    const rates: number[] = [];
    for (let r = 0; r < rounds; r++) rates.push(through());
    const rate = median(rates);
    ctx.log(`20 rules: ${Math.round(rate)} events/s (${(1e6 / rate).toFixed(2)} µs/event)`);
    results.push({ name: 'rules.20-typical.rate', value: Math.round(rate), unit: 'events/s', usPerEvent: round(1e6 / rate), rules: RULES.length, events: n });

    // One filter: CEL beside the same test in JavaScript.
    const src = 'has(payload.value) && payload.value > 50.0';
    const cel = compiled(src);
    const js = (v: { payload: unknown }) => {
      const p = v.payload as { value?: unknown } | null;
      return p !== null && typeof p === 'object' && typeof p.value === 'number' && p.value > 50;
    };
    const bound = events.map((e) => bind(e));
    const jsons = events.map((e) => JSON.stringify({ id: `gw:${e.seq}`, seq: e.seq, ts: e.ts, source: e.source, topic: e.topic, payload: e.payload, kind: e.kind }));
    const route = wherePredicate(src, 'bench', new Registry());
    const timeNs = (f: (i: number) => boolean): number => {
      let hits = 0;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) if (f(i)) hits++;
      const ns = Number(process.hrtime.bigint() - t0) / n;
      if (hits < 0) throw new Error('unreachable');
      return ns;
    };
    const sides = {
      celBound: (i: number) => isTrue(cel.evaluate(bound[i])),
      jsBound: (i: number) => js(bound[i] as { payload: unknown }),
      celWhere: (i: number) => route(jsons[i]),
      jsWhere: (i: number) => js(JSON.parse(jsons[i])),
    };
    for (const f of Object.values(sides)) timeNs(f);
    const t: Record<keyof typeof sides, number[]> = { celBound: [], jsBound: [], celWhere: [], jsWhere: [] };
    for (let r = 0; r < rounds; r++) for (const k of Object.keys(sides) as (keyof typeof sides)[]) t[k].push(timeNs(sides[k]));
    const m = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, median(v)])) as Record<keyof typeof sides, number>;
    ctx.log(`filter "${src}": CEL ${m.celBound.toFixed(0)} ns vs JS ${m.jsBound.toFixed(1)} ns; on the where: path ${m.celWhere.toFixed(0)} vs ${m.jsWhere.toFixed(0)} ns`);
    results.push({
      name: 'rules.filter.cel.cost',
      value: round(m.celBound),
      unit: 'ns/event',
      baseline: round(m.jsBound),
      baselineName: 'rules.filter.js.cost',
      ratio: round(m.celBound / m.jsBound),
      expression: src,
    });
    results.push({
      name: 'rules.where.cel.cost',
      value: round(m.celWhere),
      unit: 'ns/event',
      baseline: round(m.jsWhere),
      baselineName: 'rules.where.js.cost',
      ratio: round(m.celWhere / m.jsWhere),
      note: 'JSON.parse of the stored envelope, then the expression',
    });
    return results;
  },
};

export default bench;
