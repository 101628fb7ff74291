/** Derive rules: a matching event gives a `derived` event of computed fields (merged onto its payload if asked). */
import type { EventInput } from '../core/event.js';
import { act } from './act.js';
import { type Bindings, CelFailure, toJson } from './cel.js';
import type { RuleEvent } from './event.js';
import type { CompiledRule } from './rule.js';
import type { RuleRunner } from './runner.js';

export function derive(run: RuleRunner, r: CompiledRule, v: Bindings, e: RuleEvent, wall: number, out: EventInput[]): void {
  if (!run.holds(r, r.wheres[0], v, wall)) return;
  const fields: Record<string, unknown> = {};
  for (const [name, x] of r.derive ?? []) {
    const val = x.evaluate(v);
    if (val instanceof CelFailure) return run.evalFailed(r, `derive.${name}`, val, e.topic, wall);
    fields[name] = toJson(val);
  }
  const base = r.config.merge && e.payload !== null && typeof e.payload === 'object' && !Array.isArray(e.payload) ? e.payload : {};
  const payload = { ...base, ...fields, rule: r.name, sourceSeq: e.seq, sourceTopic: e.topic };
  r.counters.matches++;
  r.metric.matches.inc();
  const topic = r.derivedTopic(e.topic);
  out.push({ source: 'rules', kind: 'derived', topic, payload, ts: wall, deviceTs: e.deviceTs });
  act(run, r, topic, payload, v, undefined, '', wall);
}
