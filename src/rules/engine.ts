/**
 * The rules engine: drop rules before storage (`keep`), derive and pattern rules after it
 * (`observe`, `tick`). This file routes events to rules and holds them together; the work is in
 * drop.ts, derive.ts and temporal.ts (patterns and alarms), actions in act.ts, and how each rule
 * step runs (errors, throws, time, logs) in runner.ts. Guarantees:
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
import type { EventInput } from '../core/event.js';
import type { Bindings } from './cel.js';
import { derive } from './derive.js';
import { DropRules } from './drop.js';
import { bind, type RuleEvent } from './event.js';
import { bindRuleMetrics } from './metrics.js';
import { CompiledRule, TopicRoutes } from './rule.js';
import { RuleRunner, type RulesContext } from './runner.js';
import type { RulesConfig } from './schema.js';
import { offerPattern, tickRule } from './temporal.js';

export type { RulesContext } from './runner.js';

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

/** Their own outputs, and audit records of device writes (a rule writing on its own audit would loop). */
const SKIP_KINDS = new Set(['alarm', 'derived', 'audit']);

export class RulesEngine {
  readonly rules: CompiledRule[];
  private readonly drops: DropRules;
  private readonly flowRules: CompiledRule[];
  private readonly flowRoutes: TopicRoutes;
  private readonly run: RuleRunner;
  private timer?: NodeJS.Timeout;

  constructor(
    config: RulesConfig,
    private readonly ctx: RulesContext,
  ) {
    this.rules = config.map((c) => new CompiledRule(c));
    this.run = new RuleRunner(ctx);
    for (const r of this.rules) r.metric = bindRuleMetrics(this.run.metrics, r.name);
    this.drops = new DropRules(
      this.rules.filter((r) => r.kind === 'drop'),
      this.run,
    );
    this.flowRules = this.rules.filter((r) => r.kind !== 'drop');
    this.flowRoutes = new TopicRoutes(this.flowRules);
    const tickMs = ctx.tickMs ?? 500;
    if (tickMs > 0 && this.rules.some((r) => r.absence || r.sequence || r.count)) {
      this.timer = setInterval(() => this.tick(), tickMs);
      this.timer.unref();
    }
  }

  /** True when some drop rule exists (the intake calls keep() only then). */
  get dropping(): boolean {
    return this.drops.size > 0;
  }

  /** True when a derive or pattern rule looks at this topic. */
  watches(topic: string): boolean {
    return this.flowRoutes.get(topic) !== null;
  }

  /** The events no drop rule removes (the same array when none is removed). */
  keep(events: EventInput[]): EventInput[] {
    return this.drops.keep(events);
  }

  /** Derive and pattern rules over stored events; returns the `derived` and `alarm` events to append. */
  observe(events: readonly RuleEvent[], wall = this.run.now()): EventInput[] {
    const run = this.run;
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
        run.guard(r, wall, () => (r.derive ? derive(run, r, v, e, wall, out) : offerPattern(run, r, parts, e, v, wall, out)));
        if (r.disabled) break;
      }
      run.timed(r, t0);
    }
    return out;
  }

  /** Clock work: absences due, expired partial matches and windows; delivers and returns the alarms. */
  tick(wall = this.run.now(), eventTime?: number): EventInput[] {
    const out: EventInput[] = [];
    for (const r of this.flowRules) if (!r.disabled) tickRule(this.run, r, wall, eventTime, out);
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
      this.run.evictionsCounted(r);
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
}
