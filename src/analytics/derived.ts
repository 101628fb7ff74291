/** The events analytics derives: an anomaly (from a detector) and an aggregate (a window that closed). */
import type { EventInput } from '../core/event.js';
import type { CompiledRule } from './compiled.js';
import type { Anomaly } from './detectors/detector.js';
import type { WindowResult } from './windows/window.js';

export type AnomalyPayload = ReturnType<typeof anomalyPayload>;

export function anomalyPayload(
  r: CompiledRule,
  topic: string,
  detector: string,
  a: Anomaly,
  value: number | Record<string, number>,
  seq: number,
  ts: number,
  contributions?: Record<string, number>,
) {
  return {
    rule: r.rule.name,
    detector,
    score: Math.round(a.score * 1e4) / 1e4,
    reason: a.reason,
    value,
    topic,
    sourceSeq: seq,
    sourceTs: ts,
    ...(a.window ? { window: a.window } : {}),
    ...(contributions ? { contributions } : {}),
  };
}

export function anomalyEvent(r: CompiledRule, topic: string, payload: AnomalyPayload): EventInput {
  return {
    source: 'analytics',
    kind: 'anomaly',
    topic: r.rule.anomalyTopic.replaceAll('{topic}', topic).replaceAll('{rule}', r.rule.name),
    payload,
  };
}

export function aggregateEvent(r: CompiledRule, topic: string, w: number, res: WindowResult): EventInput {
  const spec = r.rule.windows[w];
  const name = r.windowNames[w];
  return {
    source: 'analytics',
    kind: 'aggregate',
    topic: spec.topic.replaceAll('{topic}', topic).replaceAll('{window}', name).replaceAll('{rule}', r.rule.name),
    payload: {
      rule: r.rule.name,
      window: name,
      type: spec.type,
      topic,
      start: res.start,
      end: res.end,
      ...res.values,
    },
  };
}
