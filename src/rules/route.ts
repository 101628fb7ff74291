/**
 * Routing: an uplink's `where:` as the predicate its log reader takes. It sees the stored envelope
 * (JSON), so it parses it: the cost falls on uplinks with a `where:` only. An event the expression
 * fails on (a missing field) is not forwarded by that uplink, and counted.
 */
import type { Registry } from 'prom-client';
import { registeredCounter } from '../ops/metrics.js';
import { CelFailure, isTrue } from './cel.js';
import { bind } from './event.js';
import { compiled } from './schema.js';

export function wherePredicate(source: string, uplink: string, registry: Registry): (json: string) => boolean {
  const x = compiled(source);
  const counted = registeredCounter(
    registry,
    'sluice_uplink_where_total',
    "Events an uplink's where: expression forwarded (kept), passed over (skipped) or failed on (error).",
    ['uplink', 'result'],
  );
  const kept = counted.labels({ uplink, result: 'kept' });
  const skipped = counted.labels({ uplink, result: 'skipped' });
  const failed = counted.labels({ uplink, result: 'error' });
  return (json) => {
    let e: { seq: number; ts: number; source: string; topic: string; payload: unknown; kind: string; deviceTs?: number };
    try {
      e = JSON.parse(json);
    } catch {
      failed.inc();
      return false;
    }
    const v = x.evaluate(bind(e));
    if (v instanceof CelFailure) {
      failed.inc();
      return false;
    }
    const ok = isTrue(v);
    (ok ? kept : skipped).inc();
    return ok;
  };
}
