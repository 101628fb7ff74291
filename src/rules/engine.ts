/**
 * The rules engine: drop rules before storage (`keep`), derive and pattern rules after it
 * (`observe`, `tick`). Guarantees:
 * - Nothing is dropped silently: every event a drop rule removes is counted per rule
 *   (`sluice_rule_dropped_total{rule}`).
 * - Rules see readings, aggregates, anomalies and status events, never their own `alarm` and
 *   `derived` outputs (no feedback loops).
 * - An expression that fails on an event (a missing field, a type mismatch) is "no match", counted
 *   (`sluice_rule_errors_total{reason="eval"}`) and logged at most once a minute per rule; a rule
 *   that throws is counted (`reason="threw"`) and disabled after MAX_FAILURES throws in a row, and
 *   the other rules and the batch go on.
 * - State is bounded per rule: `maxKeys` keys, `maxPending` partial matches or window events per
 *   key; evictions are counted (`sluice_rule_evictions_total{rule,what}`).
 * - CPU: time spent in each rule is measured per batch (`sluice_rule_eval_seconds_total{rule}`).
 * - With no rules the gateway builds no engine: intake pays nothing.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { EventInput } from '../core/event.js';
import { type DeviceWriter, fillTopic } from './actions.js';
import { type Bindings, bindingsValue, CelFailure, celValue, type CompiledExpression, isTrue, keyString, toJson } from './cel.js';
import { bind, type RuleEvent } from './event.js';
import { bindRuleMetrics, type RuleMetrics, ruleMetrics } from './metrics.js';
import type { PatternMatch } from './patterns.js';
import { CompiledRule, TopicRoutes } from './rule.js';
import type { RulesConfig } from './schema.js';

export interface RulesContext {
  logger: Logger;
  registry: Registry;
  publishLocal?(topic: string, payload: string): void;
  /** The safe device write path; without it, writes are counted as unavailable. */
  writer?: DeviceWriter;
  /** Appends events found by the clock (absences); without it tick() only returns them. */
  emit?(events: EventInput[]): void;
  /** Clock tick for absences and expiry, ms (default 500; 0: no timer, call tick() yourself). */
  tickMs?: number;
  now?: () => number;
}

export interface RuleStatus {
  name: string;
  kind: string;
  disabled: boolean;
  keys: number;
  pending: number;
  evictedKeys: number;
  evictedPending: number;
  matches: number;
  evalSeconds: number;
  evalErrors: number;
  failures: number;
  late: number;
  actions: { published: number; written: number; suppressed: number; failed: number; unavailable: number };
}

const MAX_FAILURES = 5;
const LOG_EVERY_MS = 60_000;
/** Their own outputs, and audit records of device writes (a rule writing on its own audit would loop). */
const SKIP_KINDS = new Set(['alarm', 'derived', 'audit']);

export class RulesEngine {
  readonly rules: CompiledRule[];
  private readonly dropRules: CompiledRule[];
  private readonly flowRules: CompiledRule[];
  private readonly metrics: RuleMetrics;
  private readonly flowRoutes: TopicRoutes;
  private readonly dropRoutes: TopicRoutes;
  private readonly now: () => number;
  private timer?: NodeJS.Timeout;

  constructor(
    config: RulesConfig,
    private readonly ctx: RulesContext,
  ) {
    this.now = ctx.now ?? Date.now;
    this.rules = config.map((c) => new CompiledRule(c));
    this.dropRules = this.rules.filter((r) => r.kind === 'drop');
    this.flowRules = this.rules.filter((r) => r.kind !== 'drop');
    this.metrics = ruleMetrics(ctx.registry);
    for (const r of this.rules) r.metric = bindRuleMetrics(this.metrics, r.name);
    this.flowRoutes = new TopicRoutes(this.flowRules);
    this.dropRoutes = new TopicRoutes(this.dropRules);
    const tickMs = ctx.tickMs ?? 500;
    if (tickMs > 0 && this.rules.some((r) => r.absence || r.sequence || r.count)) {
      this.timer = setInterval(() => this.tick(), tickMs);
      this.timer.unref();
    }
  }

  /** True when some drop rule exists (the intake calls keep() only then). */
  get dropping(): boolean {
    return this.dropRules.length > 0;
  }

  /** True when a derive or pattern rule looks at this topic. */
  watches(topic: string): boolean {
    return this.flowRoutes.get(topic) !== null;
  }

  /** The events no drop rule removes (the same array when none is removed). */
  keep(events: EventInput[]): EventInput[] {
    let kept: EventInput[] | undefined;
    const wall = this.now();
    for (let i = 0; i < events.length; i++) {
      const e = events[i];
      let dropped = false;
      let vars: Bindings | undefined;
      const route = this.dropRoutes.get(e.topic);
      for (let k = 0; route && k < this.dropRules.length; k++) {
        const r = this.dropRules[k];
        if (r.disabled || route[k] === 0) continue;
        const t0 = performance.now();
        vars ??= bind({ seq: null, ts: e.ts ?? wall, topic: e.topic, source: e.source, payload: e.payload, kind: e.kind ?? 'reading', deviceTs: e.deviceTs });
        const v = vars;
        dropped = this.guard(r, wall, () => this.holds(r, r.wheres[0], v, wall) && this.holds(r, r.drop, v, wall)) === true;
        this.timed(r, t0);
        if (dropped) {
          r.counters.matches++;
          r.metric.dropped.inc();
          break;
        }
      }
      if (dropped && !kept) kept = events.slice(0, i);
      else if (!dropped && kept) kept.push(e);
    }
    return kept ?? events;
  }

  /** Derive and pattern rules over stored events; returns the `derived` and `alarm` events to append. */
  observe(events: readonly RuleEvent[], wall = this.now()): EventInput[] {
    const out: EventInput[] = [];
    const vars: (Bindings | undefined)[] = new Array(events.length);
    const routes: (Uint32Array | null)[] = events.map((e) => (SKIP_KINDS.has(e.kind) ? null : this.flowRoutes.get(e.topic)));
    for (let k = 0; k < this.flowRules.length; k++) {
      const r = this.flowRules[k];
      if (r.disabled) continue;
      const t0 = performance.now();
      for (let i = 0; i < events.length; i++) {
        const parts = routes[i]?.[k] ?? 0;
        if (parts === 0) continue;
        const e = events[i];
        const v = (vars[i] ??= bind(e));
        this.guard(r, wall, () => this.offer(r, parts, e, v, wall, out));
        if (r.disabled) break;
      }
      this.timed(r, t0);
    }
    return out;
  }

  /** Clock work: absences due, expired partial matches and windows; delivers and returns the alarms. */
  tick(wall = this.now(), eventTime?: number): EventInput[] {
    const out: EventInput[] = [];
    for (const r of this.flowRules) {
      if (r.disabled) continue;
      // Event time, not the wall clock: a device whose clock is behind keeps its partial matches.
      const watermark = Math.max(r.watermark, eventTime ?? Number.NEGATIVE_INFINITY);
      this.guard(r, wall, () => {
        const found: PatternMatch[] = [];
        r.absence?.due(watermark, eventTime ?? wall, found);
        r.sequence?.expire(watermark - r.config.lateness);
        r.count?.expire(watermark - r.config.lateness, r.config.count?.atLeast ?? 1);
        for (const m of found) this.matched(r, m, wall, out);
      });
      this.syncEvictions(r);
    }
    if (out.length > 0 && this.ctx.emit) {
      try {
        this.ctx.emit(out);
      } catch (err) {
        this.ctx.logger.warn({ err: (err as Error).message, n: out.length }, 'rule alarms not handed over');
      }
    }
    return out;
  }

  /** Takes over the state of the engine this one replaces (hot reload): unchanged rules keep theirs. */
  adopt(previous: RulesEngine): void {
    for (const r of this.rules) {
      const old = previous.rules.find((o) => o.name === r.name);
      if (!old) continue;
      r.adopt(old);
      this.synced.set(r, { ...r.evictions });
    }
  }

  status(): RuleStatus[] {
    return this.rules.map((r) => {
      const c = r.counters;
      return {
        name: r.name,
        kind: r.kind,
        disabled: r.disabled,
        ...r.size(),
        evictedKeys: r.evictions.keys,
        evictedPending: r.evictions.pending,
        matches: c.matches,
        evalSeconds: c.evalSeconds,
        evalErrors: c.evalErrors,
        failures: c.failures,
        late: c.late,
        actions: { published: c.published, written: c.written, suppressed: c.suppressed, failed: c.actionFailures, unavailable: c.unavailable },
      };
    });
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private offer(r: CompiledRule, parts: number, e: RuleEvent, v: Bindings, wall: number, out: EventInput[]): void {
    const t = e.deviceTs !== undefined && Number.isFinite(e.deviceTs) ? e.deviceTs : e.ts;
    if (r.kind !== 'derive') {
      if (t < r.watermark - r.config.lateness) {
        r.counters.late++;
        r.metric.late.inc();
        return;
      }
      if (t > r.watermark) r.watermark = t;
    }
    if (r.derive) return this.derive(r, v, e, wall, out);
    let m: PatternMatch | undefined;
    if (r.sequence) {
      const starts = (parts & 1) !== 0 && this.holds(r, r.wheres[0], v, wall);
      const laterStep = (parts & ~1) !== 0;
      if (!starts && !laterStep) return;
      const key = this.keyOf(r, v, wall);
      if (key === undefined) return;
      m = r.sequence.offer(key, v, t, starts, (step, first) => (parts & (1 << step)) !== 0 && this.holds(r, r.wheres[step], { ...v, first: bindingsValue(first) }, wall));
    } else if (r.absence) {
      const arms = (parts & 1) !== 0 && this.holds(r, r.wheres[0], v, wall);
      if (!arms && (parts & 2) === 0) return;
      const key = this.keyOf(r, v, wall);
      if (key === undefined) return;
      m = r.absence.offer(key, v, t, wall, arms, (first) => (parts & 2) !== 0 && this.holds(r, r.wheres[1], { ...v, first: bindingsValue(first) }, wall));
    } else if (r.count) {
      if (!this.holds(r, r.wheres[0], v, wall)) return;
      const key = this.keyOf(r, v, wall);
      if (key === undefined) return;
      const x = r.value ? this.number(r, r.value, v, wall) : Number.NaN;
      const { window, state } = r.count.add(key, t, x);
      const atLeast = r.config.count?.atLeast ?? 1;
      const holds = window.count >= atLeast && (!r.having || this.holds(r, r.having, { ...v, window: celValue(window) }, wall));
      m = r.count.judge(key, state, holds, v, r.value ? { ...window } : { count: window.count, start: window.start, end: window.end });
    }
    this.syncEvictions(r);
    if (m) this.matched(r, m, wall, out);
  }

  private derive(r: CompiledRule, v: Bindings, e: RuleEvent, wall: number, out: EventInput[]): void {
    if (!this.holds(r, r.wheres[0], v, wall)) return;
    const fields: Record<string, unknown> = {};
    for (const [name, x] of r.derive ?? []) {
      const val = x.evaluate(v);
      if (val instanceof CelFailure) return this.evalFailed(r, `derive.${name}`, val, e.topic, wall);
      fields[name] = toJson(val);
    }
    const base = r.config.merge && e.payload !== null && typeof e.payload === 'object' && !Array.isArray(e.payload) ? e.payload : {};
    const payload = { ...base, ...fields, rule: r.name, sourceSeq: e.seq, sourceTopic: e.topic };
    r.counters.matches++;
    r.metric.matches.inc();
    const topic = r.derivedTopic(e.topic);
    out.push({ source: 'rules', kind: 'derived', topic, payload, ts: wall, deviceTs: e.deviceTs });
    this.act(r, topic, payload, v, undefined, '', wall);
  }

  private matched(r: CompiledRule, m: PatternMatch, wall: number, out: EventInput[]): void {
    r.counters.matches++;
    r.metric.matches.inc();
    const ev = m.event;
    const payload: Record<string, unknown> = {
      rule: r.name,
      key: m.key,
      ...m.detail,
      severity: typeof r.config.alarm === 'object' ? r.config.alarm.severity : 'warning',
      sourceSeq: ev.seq,
      sourceTopic: ev.topic,
    };
    const topic = fillTopic(r.config.topic ?? 'alarms/{rule}', r.name, String(ev.topic), m.key);
    if (r.config.alarm !== false) out.push({ source: 'rules', kind: 'alarm', topic, payload, ts: wall });
    this.act(r, topic, payload, ev, m.first, m.key, wall);
  }

  /** Publish and write actions, each rate-limited; failures counted, never thrown. */
  private act(r: CompiledRule, topic: string, payload: object, v: Bindings, first: Bindings | undefined, key: string, wall: number): void {
    const { publish, write } = r.config;
    if (publish && r.publishLimit) {
      if (!r.publishLimit.take(wall)) this.actionResult(r, 'publish', 'suppressed');
      else if (!this.ctx.publishLocal) this.actionResult(r, 'publish', 'unavailable');
      else {
        try {
          this.ctx.publishLocal(fillTopic(publish.topic, r.name, String(v.topic), key), JSON.stringify(payload));
          this.actionResult(r, 'publish', 'done');
        } catch (err) {
          this.actionResult(r, 'publish', 'failed', (err as Error).message, wall);
        }
      }
    }
    if (write && r.writeLimit && r.writeValue) {
      if (!r.writeLimit.take(wall)) return this.actionResult(r, 'write', 'suppressed');
      const value = r.writeValue.evaluate(first ? { ...v, first: bindingsValue(first) } : v);
      if (value instanceof CelFailure) return this.evalFailed(r, 'write.value', value, topic, wall);
      const writer = this.ctx.writer;
      if (!writer) {
        this.actionResult(r, 'write', 'unavailable');
        return this.logOnce(r, 'no-writer', wall, { target: write.target }, `rule "${r.name}": no device write path is configured; the write to ${write.target} was not done`);
      }
      const target = write.target.replaceAll('{rule}', r.name).replaceAll('{key}', key);
      writer.write(target, toJson(value), { rule: r.name, key }).then(
        () => this.actionResult(r, 'write', 'done'),
        (err) => this.actionResult(r, 'write', 'failed', (err as Error).message, this.now()),
      );
    }
  }

  private actionResult(r: CompiledRule, action: 'publish' | 'write', result: 'done' | 'suppressed' | 'failed' | 'unavailable', err?: string, wall = 0): void {
    const c = r.counters;
    if (result === 'done' && action === 'publish') c.published++;
    else if (result === 'done') c.written++;
    else if (result === 'suppressed') c.suppressed++;
    else if (result === 'unavailable') c.unavailable++;
    else {
      c.actionFailures++;
      this.logOnce(r, `${action}-failed`, wall, { err }, `rule "${r.name}": ${action} failed`);
    }
    this.metrics.actions.inc({ rule: r.name, action, result });
  }

  private keyOf(r: CompiledRule, v: Bindings, wall: number): string | undefined {
    if (!r.key) return '';
    const k = r.key.evaluate(v);
    if (k instanceof CelFailure) {
      this.evalFailed(r, 'key', k, String(v.topic), wall);
      return undefined;
    }
    return keyString(k);
  }

  private holds(r: CompiledRule, x: CompiledExpression | undefined, v: Bindings, wall: number): boolean {
    if (!x) return true;
    const res = x.evaluate(v);
    if (res instanceof CelFailure) {
      this.evalFailed(r, 'where', res, String(v.topic), wall);
      return false;
    }
    return isTrue(res);
  }

  private number(r: CompiledRule, x: CompiledExpression, v: Bindings, wall: number): number {
    const res = x.evaluate(v);
    if (res instanceof CelFailure) {
      this.evalFailed(r, 'value', res, String(v.topic), wall);
      return Number.NaN;
    }
    return Number(toJson(res));
  }

  private evalFailed(r: CompiledRule, part: string, f: CelFailure, topic: string, wall: number): void {
    r.counters.evalErrors++;
    r.metric.evalErrors.inc();
    this.logOnce(r, `eval:${part}`, wall, { topic, err: f.message }, `rule "${r.name}": ${part} failed on an event (taken as no match; counted)`);
  }

  /** Runs one rule step; a throw is counted, and MAX_FAILURES in a row disable the rule. */
  private guard<T>(r: CompiledRule, wall: number, fn: () => T): T | undefined {
    try {
      const v = fn();
      r.consecutiveFailures = 0;
      return v;
    } catch (err) {
      r.counters.failures++;
      this.metrics.errors.inc({ rule: r.name, reason: 'threw' });
      if (++r.consecutiveFailures >= MAX_FAILURES) {
        r.disabled = true;
        this.ctx.logger.error({ rule: r.name, err: (err as Error)?.message }, `rule "${r.name}" failed ${MAX_FAILURES} times in a row and is disabled until the config is reloaded`);
      } else {
        this.logOnce(r, 'threw', wall, { err: (err as Error)?.message }, `rule "${r.name}" failed on an event; counted, the other rules go on`);
      }
      return undefined;
    }
  }

  private timed(r: CompiledRule, t0: number): void {
    const s = (performance.now() - t0) / 1000;
    r.counters.evalSeconds += s;
    r.metric.evalSeconds.inc(s);
  }

  private readonly synced = new WeakMap<CompiledRule, { keys: number; pending: number }>();

  /** Moves eviction counts into the metric (the patterns count into plain numbers). */
  private syncEvictions(r: CompiledRule): void {
    const seen = this.synced.get(r) ?? { keys: 0, pending: 0 };
    if (r.evictions.keys > seen.keys) this.metrics.evictions.inc({ rule: r.name, what: 'keys' }, r.evictions.keys - seen.keys);
    if (r.evictions.pending > seen.pending) this.metrics.evictions.inc({ rule: r.name, what: 'pending' }, r.evictions.pending - seen.pending);
    this.synced.set(r, { keys: r.evictions.keys, pending: r.evictions.pending });
  }

  private logOnce(r: CompiledRule, kind: string, now: number, fields: object, msg: string): void {
    if (now - (r.loggedAt[kind] ?? Number.NEGATIVE_INFINITY) < LOG_EVERY_MS) return;
    r.loggedAt[kind] = now;
    this.ctx.logger.warn({ rule: r.name, ...fields }, msg);
  }
}
