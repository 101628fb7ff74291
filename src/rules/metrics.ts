/** The rules' Prometheus metrics (bounded cardinality: one label set per rule). */
import type { Counter, Registry } from 'prom-client';
import { registeredCounter as counter } from '../ops/metrics.js';

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

/** One rule's label set of the per-rule metrics. */
export interface BoundRuleMetrics {
  evalSeconds: ReturnType<Counter<'rule'>['labels']>;
  matches: ReturnType<Counter<'rule'>['labels']>;
  dropped: ReturnType<Counter<'rule'>['labels']>;
  late: ReturnType<Counter<'rule'>['labels']>;
  evalErrors: ReturnType<Counter<'rule'>['labels']>;
}

export function bindRuleMetrics(m: RuleMetrics, rule: string): BoundRuleMetrics {
  return {
    evalSeconds: m.evalSeconds.labels({ rule }),
    matches: m.matches.labels({ rule }),
    dropped: m.dropped.labels({ rule }),
    late: m.late.labels({ rule }),
    evalErrors: m.errors.labels({ rule, reason: 'eval' }),
  };
}
