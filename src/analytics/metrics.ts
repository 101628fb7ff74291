/** The analytics engine's counters (bounded labels: rule names and detector types from the config). */
import type { Counter, Registry } from 'prom-client';
import { registeredCounter as counter } from '../ops/metrics.js';

export interface AnalyticsMetrics {
  anomalies: Counter<'detector'>;
  skipped: Counter<'rule' | 'reason'>;
  errors: Counter<'rule' | 'detector'>;
  aggregates: Counter<'rule'>;
  actions: Counter<'rule' | 'result'>;
}

export function analyticsMetrics(r: Registry): AnalyticsMetrics {
  return {
    anomalies: counter(r, 'sluice_anomalies_total', 'Anomaly events raised, by detector.', ['detector']),
    skipped: counter(r, 'sluice_analytics_skipped_total', 'Readings a rule could not use (not_numeric) or too late for its windows (late).', ['rule', 'reason']),
    errors: counter(r, 'sluice_analytics_errors_total', 'Detectors that threw (reset and isolated).', ['rule', 'detector']),
    aggregates: counter(r, 'sluice_analytics_aggregates_total', 'Window aggregate events produced.', ['rule']),
    actions: counter(r, 'sluice_analytics_actions_total', 'Local action messages published or suppressed by the rate limit.', ['rule', 'result']),
  };
}
