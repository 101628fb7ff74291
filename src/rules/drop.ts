/**
 * Drop rules, before storage: an event a drop rule matches never reaches the ring log, and is
 * counted against that rule (`sluice_rule_dropped_total{rule}`), never dropped silently.
 */
import type { EventInput } from '../core/event.js';
import type { Bindings } from './cel.js';
import { bind } from './event.js';
import { type CompiledRule, TopicRoutes } from './rule.js';
import type { RuleRunner } from './runner.js';

export class DropRules {
  private readonly routes: TopicRoutes;

  constructor(
    private readonly rules: CompiledRule[],
    private readonly run: RuleRunner,
  ) {
    this.routes = new TopicRoutes(rules);
  }

  get size(): number {
    return this.rules.length;
  }

  /** The events no drop rule removes (the same array when none is removed). */
  keep(events: EventInput[]): EventInput[] {
    const run = this.run;
    let kept: EventInput[] | undefined;
    const wall = run.now();
    for (let i = 0; i < events.length; i++) {
      const e = events[i];
      let dropped = false;
      let vars: Bindings | undefined;
      const route = this.routes.get(e.topic);
      for (let k = 0; route && k < this.rules.length; k++) {
        const r = this.rules[k];
        if (r.disabled || route[k] === 0) continue;
        const t0 = performance.now();
        vars ??= bind({ seq: null, ts: e.ts ?? wall, topic: e.topic, source: e.source, payload: e.payload, kind: e.kind ?? 'reading', deviceTs: e.deviceTs });
        const v = vars;
        dropped = run.guard(r, wall, () => run.holds(r, r.wheres[0], v, wall) && run.holds(r, r.drop, v, wall)) === true;
        run.timed(r, t0);
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
}
