/**
 * How one rule step runs, whatever the rule's kind: an expression that fails is "no match" and
 * counted, a throw is counted and disables the rule after MAX_FAILURES in a row, time is measured,
 * logs are at most once a minute per rule and kind of trouble. Drop, derive and pattern evaluation
 * (drop.ts, derive.ts, temporal.ts) and the actions (act.ts) all go through one runner, so these
 * guarantees hold the same way for every rule.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { EventInput } from '../core/event.js';
import type { DeviceWriter } from './actions.js';
import { type Bindings, CelFailure, type CompiledExpression, isTrue, keyString, toJson } from './cel.js';
import { type RuleMetrics, ruleMetrics } from './metrics.js';
import type { CompiledRule } from './rule.js';

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

const MAX_FAILURES = 5;
const LOG_EVERY_MS = 60_000;

export class RuleRunner {
  readonly metrics: RuleMetrics;
  readonly now: () => number;
  private readonly synced = new WeakMap<CompiledRule, { keys: number; pending: number }>();

  constructor(readonly ctx: RulesContext) {
    this.now = ctx.now ?? Date.now;
    this.metrics = ruleMetrics(ctx.registry);
  }

  /** Runs one rule step; a throw is counted, and MAX_FAILURES in a row disable the rule. */
  guard<T>(r: CompiledRule, wall: number, fn: () => T): T | undefined {
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

  timed(r: CompiledRule, t0: number): void {
    const s = (performance.now() - t0) / 1000;
    r.counters.evalSeconds += s;
    r.metric.evalSeconds.inc(s);
  }

  /** A condition: true when absent; a failure is no match (counted). */
  holds(r: CompiledRule, x: CompiledExpression | undefined, v: Bindings, wall: number): boolean {
    if (!x) return true;
    const res = x.evaluate(v);
    if (res instanceof CelFailure) {
      this.evalFailed(r, 'where', res, String(v.topic), wall);
      return false;
    }
    return isTrue(res);
  }

  number(r: CompiledRule, x: CompiledExpression, v: Bindings, wall: number): number {
    const res = x.evaluate(v);
    if (res instanceof CelFailure) {
      this.evalFailed(r, 'value', res, String(v.topic), wall);
      return Number.NaN;
    }
    return Number(toJson(res));
  }

  /** The event's pattern key ('' without a key expression); undefined when it fails (counted). */
  keyOf(r: CompiledRule, v: Bindings, wall: number): string | undefined {
    if (!r.key) return '';
    const k = r.key.evaluate(v);
    if (k instanceof CelFailure) {
      this.evalFailed(r, 'key', k, String(v.topic), wall);
      return undefined;
    }
    return keyString(k);
  }

  evalFailed(r: CompiledRule, part: string, f: CelFailure, topic: string, wall: number): void {
    r.counters.evalErrors++;
    r.metric.evalErrors.inc();
    this.logOnce(r, `eval:${part}`, wall, { topic, err: f.message }, `rule "${r.name}": ${part} failed on an event (taken as no match; counted)`);
  }

  /** Moves eviction counts into the metric (the patterns count into plain numbers). */
  syncEvictions(r: CompiledRule): void {
    const seen = this.synced.get(r) ?? { keys: 0, pending: 0 };
    if (r.evictions.keys > seen.keys) this.metrics.evictions.inc({ rule: r.name, what: 'keys' }, r.evictions.keys - seen.keys);
    if (r.evictions.pending > seen.pending) this.metrics.evictions.inc({ rule: r.name, what: 'pending' }, r.evictions.pending - seen.pending);
    this.synced.set(r, { keys: r.evictions.keys, pending: r.evictions.pending });
  }

  /** Evictions already in the metric (a rule adopted on reload: its old engine counted them). */
  evictionsCounted(r: CompiledRule): void {
    this.synced.set(r, { ...r.evictions });
  }

  logOnce(r: CompiledRule, kind: string, now: number, fields: object, msg: string): void {
    if (now - (r.loggedAt[kind] ?? Number.NEGATIVE_INFINITY) < LOG_EVERY_MS) return;
    r.loggedAt[kind] = now;
    this.ctx.logger.warn({ rule: r.name, ...fields }, msg);
  }
}
