/**
 * A rule as the engine runs it: its config compiled (topic matcher, field reader, detector specs,
 * actions), its keys (one per concrete topic, each with its detectors and windows) and its counters.
 */
import { Action } from './actions.js';
import type { Detector } from './detectors/detector.js';
import { detectorSpec } from './detectors/index.js';
import { fieldReader } from './field.js';
import { topicMatcher } from './match.js';
import { type AnalyticsRule, type DetectorSpec, windowName } from './schema.js';
import type { VectorRule } from './vector-rule.js';
import type { WindowOp } from './windows/window.js';

/** Topics remembered per rule with whether they match (bounded: cleared when full). */
const MATCH_CACHE = 10_000;

export interface KeyState {
  topic: string;
  /** Second-chance LRU: when the key took its place in the map's order, and when it was last seen. */
  stamp: number;
  lastUse: number;
  detectors: Detector[];
  windows: WindowOp[];
  lastValue: number;
  lastSeq: number;
}

export interface CompiledRule {
  rule: AnalyticsRule;
  matches: (topic: string) => boolean;
  read: (payload: unknown) => number | undefined;
  specs: DetectorSpec[];
  windowNames: string[];
  actions: Action[];
  keys: Map<string, KeyState>;
  /** A rule with `group`: its readings make device vectors instead of keys. */
  vector?: VectorRule;
  clock: number;
  /** Topic → matches, bounded (topics repeat: one split per new topic, not per reading). */
  matchCache: Map<string, boolean>;
  anomalies: number;
  aggregates: number;
  notNumeric: number;
  late: number;
  errors: number;
  evictedKeys: number;
  loggedAt: Record<string, number>;
}

export function compileRule(rule: AnalyticsRule): CompiledRule {
  return {
    rule,
    matches: topicMatcher(rule.match),
    read: fieldReader(rule.field),
    specs: (Array.isArray(rule.detector) ? rule.detector : [rule.detector]).map((d) => detectorSpec(d)),
    windowNames: rule.windows.map((w) => windowName(w)),
    actions: rule.actions.map((a) => new Action(a)),
    keys: new Map(),
    clock: 0,
    matchCache: new Map(),
    anomalies: 0,
    aggregates: 0,
    notNumeric: 0,
    late: 0,
    errors: 0,
    evictedKeys: 0,
    loggedAt: {},
  };
}

/** Whether the rule looks at this topic (cached per topic). */
export function matches(r: CompiledRule, topic: string): boolean {
  let m = r.matchCache.get(topic);
  if (m === undefined) {
    m = r.matches(topic);
    if (r.matchCache.size >= MATCH_CACHE) r.matchCache.clear();
    r.matchCache.set(topic, m);
  }
  return m;
}

/** The part of a rule its state depends on: state is carried over only while this is unchanged. */
export function statefulConfig(r: AnalyticsRule): string {
  return JSON.stringify([r.match, r.field, r.detector, r.windows, r.lateness, r.maxKeys, r.group]);
}
