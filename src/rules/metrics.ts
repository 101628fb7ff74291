/** The rules' Prometheus metrics (bounded cardinality: one label set per rule). */
import { Counter, type Registry } from 'prom-client';

export interface RuleMetrics {
  evalSeconds: Counter<'rule'>;
  matches: Counter<'rule'>;
  dropped: Counter<'rule'>;
  errors: Counter<'rule' | 'reason'>;
  evictions: Counter<'rule' | 'what'>;
  late: Counter<'rule'>;
  actions: Counter<'rule' | 'action' | 'result'>;
}

export function ruleMetrics(r: Registry): RuleMetrics {
  return {
    evalSeconds: counter(r, 'sluice_rule_eval_seconds_total', 'CPU time spent evaluating each rule.', ['rule']),
    matches: counter(r, 'sluice_rule_matches_total', 'Rule outputs: events derived or dropped, patterns matched.', ['rule']),
    dropped: counter(r, 'sluice_rule_dropped_total', 'Events a drop rule kept out of the ring log.', ['rule']),
    errors: counter(r, 'sluice_rule_errors_total', 'Expressions that failed on an event (eval) and rules that threw (threw).', ['rule', 'reason']),
    evictions: counter(r, 'sluice_rule_evictions_total', 'Rule state forgotten at its bound: keys, or pending partial matches and window events.', ['rule', 'what']),
    late: counter(r, 'sluice_rule_late_total', 'Events older than a rule allows (lateness) and so ignored by it.', ['rule']),
    actions: counter(r, 'sluice_rule_actions_total', 'Rule actions by result (done, suppressed by the rate limit, failed, unavailable).', ['rule', 'action', 'result']),
  };
}

function counter<L extends string>(registry: Registry, name: string, help: string, labelNames: L[]): Counter<L> {
  // A reloaded config builds a new engine on the same registry: reuse the metric.
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Counter<L>;
  return new Counter({ name, help, labelNames, registers: [registry] });
}
