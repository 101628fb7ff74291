/**
 * Pattern rules (sequence, absence, count) in event time: each event is offered to the rule's
 * pattern state (patterns.ts) by key, the clock expires partial matches and finds absences, and a
 * completed pattern becomes an `alarm` event (unless `alarm: false`) and the rule's actions.
 */
import type { EventInput } from '../core/event.js';
import { act } from './act.js';
import { fillTopic } from './actions.js';
import { type Bindings, bindingsValue, celValue } from './cel.js';
import type { RuleEvent } from './event.js';
import type { PatternMatch } from './patterns.js';
import type { CompiledRule } from './rule.js';
import type { RuleRunner } from './runner.js';

/** One event to a pattern rule; `parts` is its topic's parts bitmask (TopicRoutes). */
export function offerPattern(run: RuleRunner, r: CompiledRule, parts: number, e: RuleEvent, v: Bindings, wall: number, out: EventInput[]): void {
  const t = e.deviceTs !== undefined && Number.isFinite(e.deviceTs) ? e.deviceTs : e.ts;
  if (t < r.watermark - r.config.lateness) {
    r.counters.late++;
    r.metric.late.inc();
    return;
  }
  if (t > r.watermark) r.watermark = t;
  let m: PatternMatch | undefined;
  if (r.sequence) {
    const starts = (parts & 1) !== 0 && run.holds(r, r.wheres[0], v, wall);
    const laterStep = (parts & ~1) !== 0;
    if (!starts && !laterStep) return;
    const key = run.keyOf(r, v, wall);
    if (key === undefined) return;
    m = r.sequence.offer(key, v, t, starts, (step, first) => (parts & (1 << step)) !== 0 && run.holds(r, r.wheres[step], { ...v, first: bindingsValue(first) }, wall));
  } else if (r.absence) {
    const arms = (parts & 1) !== 0 && run.holds(r, r.wheres[0], v, wall);
    if (!arms && (parts & 2) === 0) return;
    const key = run.keyOf(r, v, wall);
    if (key === undefined) return;
    m = r.absence.offer(key, v, t, wall, arms, (first) => (parts & 2) !== 0 && run.holds(r, r.wheres[1], { ...v, first: bindingsValue(first) }, wall));
  } else if (r.count) {
    if (!run.holds(r, r.wheres[0], v, wall)) return;
    const key = run.keyOf(r, v, wall);
    if (key === undefined) return;
    const x = r.value ? run.number(r, r.value, v, wall) : Number.NaN;
    const { window, state } = r.count.add(key, t, x);
    const atLeast = r.config.count?.atLeast ?? 1;
    const holds = window.count >= atLeast && (!r.having || run.holds(r, r.having, { ...v, window: celValue(window) }, wall));
    m = r.count.judge(key, state, holds, v, r.value ? { ...window } : { count: window.count, start: window.start, end: window.end });
  }
  run.syncEvictions(r);
  if (m) matched(run, r, m, wall, out);
}

/** Clock work for one rule: absences due, expired partial matches and windows; their alarms go to `out`. */
export function tickRule(run: RuleRunner, r: CompiledRule, wall: number, eventTime: number | undefined, out: EventInput[]): void {
  // Event time, not the wall clock: a device whose clock is behind keeps its partial matches.
  const watermark = Math.max(r.watermark, eventTime ?? Number.NEGATIVE_INFINITY);
  run.guard(r, wall, () => {
    const found: PatternMatch[] = [];
    r.absence?.due(watermark, eventTime ?? wall, found);
    r.sequence?.expire(watermark - r.config.lateness);
    r.count?.expire(watermark - r.config.lateness, r.config.count?.atLeast ?? 1);
    for (const m of found) matched(run, r, m, wall, out);
  });
  run.syncEvictions(r);
}

function matched(run: RuleRunner, r: CompiledRule, m: PatternMatch, wall: number, out: EventInput[]): void {
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
  act(run, r, topic, payload, ev, m.first, m.key, wall);
}
