/**
 * One rule, compiled: its topic filters (which parts of the rule an event's topic concerns, cached
 * per topic), its expressions (from the config cache: compiled once, at load), its pattern state and
 * its counters. The engine (engine.ts and the files it names) drives it; this file holds no policy.
 */
import { topicMatcher } from '../analytics/match.js';
import { fillTopic, RateLimit } from './actions.js';
import type { BoundRuleMetrics } from './metrics.js';
import type { CompiledExpression } from './cel.js';
import { AbsencePattern, CountPattern, type Evictions, SequencePattern } from './patterns.js';
import { compiled, kindOf, pendingBound, type RuleConfig, type RuleKind } from './schema.js';

const TOPIC_CACHE = 10_000;

export interface RuleCounters {
  /** Outputs: events derived or dropped, patterns completed. */
  matches: number;
  evalSeconds: number;
  /** Expressions that failed on an event (a missing field, a type mismatch): taken as "no match". */
  evalErrors: number;
  /** The rule itself threw (a bug): counted, and the rule is disabled after repeated throws. */
  failures: number;
  late: number;
  published: number;
  written: number;
  suppressed: number;
  actionFailures: number;
  unavailable: number;
}

export class CompiledRule {
  readonly name: string;
  readonly kind: RuleKind;
  /** One topic filter per part: derive/drop/count `[match]`, absence `[match, then]`, sequence one per step. */
  private readonly filters: ((topic: string) => boolean)[];
  private readonly topicCache = new Map<string, string>();
  /** Its label set of each metric, bound once (a label lookup per increment costs more than the rule). */
  metric!: BoundRuleMetrics;
  /** Per part, its `where` (or undefined: every event on the part's topics). */
  readonly wheres: (CompiledExpression | undefined)[];
  readonly key?: CompiledExpression;
  readonly derive?: [string, CompiledExpression][];
  readonly drop?: CompiledExpression;
  readonly value?: CompiledExpression;
  readonly having?: CompiledExpression;
  readonly writeValue?: CompiledExpression;
  sequence?: SequencePattern;
  absence?: AbsencePattern;
  count?: CountPattern;
  readonly publishLimit?: RateLimit;
  readonly writeLimit?: RateLimit;
  evictions: Evictions = { keys: 0, pending: 0 };
  counters: RuleCounters = {
    matches: 0,
    evalSeconds: 0,
    evalErrors: 0,
    failures: 0,
    late: 0,
    published: 0,
    written: 0,
    suppressed: 0,
    actionFailures: 0,
    unavailable: 0,
  };
  /** Newest event time seen (event-time order and lateness). */
  watermark = Number.NEGATIVE_INFINITY;
  consecutiveFailures = 0;
  disabled = false;
  loggedAt: Record<string, number> = {};

  constructor(readonly config: RuleConfig) {
    this.name = config.name;
    this.kind = kindOf(config);
    const c = config;
    const cx = (s: string | undefined, extra: ('first' | 'window')[] = []) => (s === undefined ? undefined : compiled(s, extra));
    if (c.sequence) {
      this.filters = c.sequence.steps.map((s) => topicMatcher(s.match));
      this.wheres = c.sequence.steps.map((s, i) => cx(s.where, i === 0 ? [] : ['first']));
      this.key = cx(c.sequence.key);
      this.sequence = new SequencePattern(c.sequence.steps.length, c.sequence.within, pendingBound(c), this.evictions, c.maxKeys);
    } else if (c.absence) {
      const a = c.absence;
      this.filters = [topicMatcher(a.match), ...(a.then ? [topicMatcher(a.then.match)] : [])];
      this.wheres = [cx(a.where), cx(a.then?.where, ['first'])];
      this.key = cx(a.key ?? 'topic');
      this.absence = new AbsencePattern(a.within, c.lateness, !a.then, this.evictions, c.maxKeys);
    } else if (c.count) {
      const k = c.count;
      this.filters = [topicMatcher(k.match)];
      this.wheres = [cx(k.where)];
      this.key = cx(k.key ?? 'topic');
      this.value = cx(k.value);
      this.having = cx(k.having, ['window']);
      this.count = new CountPattern(k.within, pendingBound(c), this.evictions, c.maxKeys);
    } else {
      this.filters = [topicMatcher(c.match ?? '#')];
      this.wheres = [cx(c.where)];
      this.drop = cx(c.drop);
      if (c.derive) this.derive = Object.entries(c.derive).map(([f, s]) => [f, compiled(s)]);
    }
    if (c.write) this.writeValue = compiled(c.write.value, c.sequence ? ['first'] : []);
    if (c.publish) this.publishLimit = new RateLimit(c.publish.minInterval);
    if (c.write) this.writeLimit = new RateLimit(c.write.minInterval);
  }

  /** Bit i set when the topic concerns part i (0: nothing here). Uncached: see TopicRoutes. */
  parts(topic: string): number {
    let m = 0;
    for (let i = 0; i < this.filters.length; i++) if (this.filters[i](topic)) m |= 1 << i;
    return m;
  }

  /** The output topic of a derive rule for a source topic (topics repeat: filled once each). */
  derivedTopic(topic: string): string {
    let t = this.topicCache.get(topic);
    if (t === undefined) {
      t = fillTopic(this.config.topic ?? '{topic}/{rule}', this.name, topic, '');
      if (this.topicCache.size >= TOPIC_CACHE) this.topicCache.clear();
      this.topicCache.set(topic, t);
    }
    return t;
  }

  /** Keys tracked and partial state held (status, budgets). */
  size(): { keys: number; pending: number } {
    const p = this.sequence ?? this.absence ?? this.count;
    return p ? { keys: p.keys.map.size, pending: p.pending() } : { keys: 0, pending: 0 };
  }

  /** Takes the state and counters of the same rule from a replaced engine (hot reload). */
  adopt(old: CompiledRule): void {
    this.counters = old.counters;
    if (JSON.stringify(old.config) !== JSON.stringify(this.config)) {
      Object.assign(this.evictions, old.evictions);
      return;
    }
    // Unchanged: keep the pattern state (which counts into its evictions), as if there had been no reload.
    this.evictions = old.evictions;
    this.sequence = old.sequence;
    this.absence = old.absence;
    this.count = old.count;
    this.watermark = old.watermark;
    this.disabled = old.disabled;
  }
}

/**
 * Which parts of which rules a topic concerns, cached per topic (bounded): one lookup per event
 * for all rules, instead of one per rule.
 */
export class TopicRoutes {
  private readonly cache = new Map<string, Uint32Array | null>();
  constructor(private readonly rules: readonly CompiledRule[]) {}

  /** Per rule (same order), its parts bitmask; null when no rule looks at the topic. */
  get(topic: string): Uint32Array | null {
    let r = this.cache.get(topic);
    if (r === undefined) {
      const parts = new Uint32Array(this.rules.length);
      let any = false;
      this.rules.forEach((rule, i) => {
        parts[i] = rule.parts(topic);
        if (parts[i] !== 0) any = true;
      });
      r = any ? parts : null;
      if (this.cache.size >= TOPIC_CACHE) this.cache.clear();
      this.cache.set(topic, r);
    }
    return r;
  }
}
