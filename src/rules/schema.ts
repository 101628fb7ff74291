/**
 * The `rules:` config section. Every expression is compiled here, at load, so `sluice validate`
 * names the broken one by its path (`rules[2].sequence.steps[1].where: ...`); the engine then takes
 * the compiled form from the same cache (an expression is compiled once).
 */
import { z } from 'zod';
import { duration, name, republishSchema, topicFilter } from '../core/config-types.js';
import { type CompiledExpression, compileExpression, type ExtraVariable } from './cel.js';

const expression = () => z.string().min(1, 'is empty');

const step = z.strictObject({
  /** MQTT topic filter the step's events come from. */
  match: topicFilter(),
  /** CEL condition over the event (later steps also see `first`). */
  where: expression().optional(),
});

const keyed = {
  /** CEL expression whose value correlates events (e.g. `segments[1]`, the device); one state per key. */
  key: expression().optional(),
  /** How long the pattern may take (sequence), the silence allowed (absence), the window (count). */
  within: duration(),
};

const templateTopic = () =>
  z
    .string()
    .min(1)
    .refine((t) => !t.includes('+') && !t.includes('#'), { message: 'is a topic to publish to: no "+" or "#"' });

export const ruleSchema = z
  .strictObject({
    name: name(),
    /** derive / drop: the topics the rule looks at. */
    match: topicFilter().optional(),
    /** derive: an extra condition (CEL) an event must meet. */
    where: expression().optional(),
    /** derive: field name → CEL expression; one `derived` event per matching event. */
    derive: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a field name'), expression()).optional(),
    /** derive: also copy the source payload's fields (computed fields win). */
    merge: z.boolean().default(false),
    /** drop: events for which this CEL condition holds are not stored at all (counted). */
    drop: expression().optional(),
    sequence: z
      .strictObject({ ...keyed, steps: z.array(step).min(2, 'needs at least two steps').max(8) })
      .optional(),
    absence: z
      .strictObject({
        ...keyed,
        match: topicFilter(),
        where: expression().optional(),
        /** The event that must follow; without it, the next event like the first (a heartbeat). */
        then: step.optional(),
      })
      .optional(),
    count: z
      .strictObject({
        ...keyed,
        match: topicFilter(),
        where: expression().optional(),
        /** Fires when at least this many matching events fall within `within` (sliding). */
        atLeast: z.number().int().min(1).max(100_000).default(1),
        /** CEL number aggregated as `window.sum/min/max/mean/last` (default: none, only `window.count`). */
        value: expression().optional(),
        /** CEL condition over `window` (and the latest event) that must also hold. */
        having: expression().optional(),
      })
      .optional(),
    /** Topic of the rule's events: `{rule}`, `{topic}` (the source event's), `{key}`. */
    topic: templateTopic().optional(),
    /** Patterns: raise an `alarm` event (the ring log's priority lane); `false` for actions only. */
    alarm: z
      .union([
        z.boolean(),
        z.strictObject({ severity: z.enum(['info', 'warning', 'critical']).default('warning') }),
      ])
      .default(true),
    /** Also publish each output on the local broker (actuators, local apps), rate-limited. */
    publish: z
      .strictObject({ topic: templateTopic(), minInterval: duration().default(1000) })
      .optional(),
    /**
     * Also publish each alarm, once stored, on the local broker, unthrottled (src/ops/republish.ts);
     * `publish` above is the rate-limited action, for every output.
     */
    republish: republishSchema.optional(),
    /** Also write a value (CEL) to a device through the gateway's safe write path, rate-limited; `{rule}`, `{key}` in `target`. */
    write: z
      .strictObject({ target: z.string().min(1), value: expression(), minInterval: duration().default(1000) })
      .optional(),
    /** Event time: events this much older than the newest seen are still taken in order. */
    lateness: duration().default(0),
    /** Keys tracked; beyond, the least recently seen is forgotten (counted). */
    maxKeys: z.number().int().min(1).max(1_000_000).default(1000),
    /**
     * Per key: partial sequence matches (default 16; each holds its first event), or events held by
     * a count window (default 1000; two numbers each). Beyond, the oldest goes (counted).
     */
    maxPending: z.number().int().min(1).max(100_000).optional(),
  })
  .superRefine((r, ctx) => {
    const kinds = (['derive', 'drop', 'sequence', 'absence', 'count'] as const).filter((k) => r[k] !== undefined);
    if (kinds.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message:
          kinds.length === 0
            ? 'needs one of derive, drop, sequence, absence, count'
            : `has ${kinds.join(' and ')}: one rule is one kind`,
      });
      return;
    }
    if ((r.derive || r.drop) && !r.match) ctx.addIssue({ code: 'custom', path: ['match'], message: 'is required for derive and drop rules' });
    if ((r.sequence || r.absence || r.count) && (r.match || r.where)) {
      ctx.addIssue({ code: 'custom', path: [r.match ? 'match' : 'where'], message: 'goes inside the pattern for sequence, absence and count rules' });
    }
    if (r.count && r.count.atLeast > pendingBound(r)) {
      ctx.addIssue({ code: 'custom', path: ['count', 'atLeast'], message: `is more than maxPending (${pendingBound(r)}): the window could never hold that many` });
    }
    for (const [path, src, extra] of expressionsOf(r)) {
      try {
        compiled(src, extra);
      } catch (err) {
        ctx.addIssue({ code: 'custom', path, message: (err as Error).message });
      }
    }
  });

export const rulesSchema = z.array(ruleSchema).default([]);
export type RuleConfig = z.output<typeof ruleSchema>;
export type RulesConfig = z.output<typeof rulesSchema>;
export type RuleKind = 'derive' | 'drop' | 'sequence' | 'absence' | 'count';

/** The per-key bound of pending state: `maxPending`, else the kind's default. */
export function pendingBound(r: { maxPending?: number; count?: unknown }): number {
  return r.maxPending ?? (r.count ? 1000 : 16);
}

export function kindOf(r: RuleConfig): RuleKind {
  if (r.derive) return 'derive';
  if (r.drop) return 'drop';
  if (r.sequence) return 'sequence';
  if (r.absence) return 'absence';
  return 'count';
}

/** Every expression of a rule: its config path (relative to the rule), its text, the extra names it sees. */
function expressionsOf(r: z.input<typeof ruleSchema> | RuleConfig): [(string | number)[], string, ExtraVariable[]][] {
  const out: [(string | number)[], string, ExtraVariable[]][] = [];
  if (r.where) out.push([['where'], r.where, []]);
  if (r.drop) out.push([['drop'], r.drop, []]);
  for (const [k, v] of Object.entries(r.derive ?? {})) out.push([['derive', k], v, []]);
  if (r.sequence) {
    if (r.sequence.key) out.push([['sequence', 'key'], r.sequence.key, []]);
    r.sequence.steps?.forEach((s, i) => {
      if (s.where) out.push([['sequence', 'steps', i, 'where'], s.where, i === 0 ? [] : ['first']]);
    });
  }
  if (r.absence) {
    const a = r.absence;
    if (a.key) out.push([['absence', 'key'], a.key, []]);
    if (a.where) out.push([['absence', 'where'], a.where, []]);
    if (a.then?.where) out.push([['absence', 'then', 'where'], a.then.where, ['first']]);
  }
  if (r.count) {
    const c = r.count;
    for (const k of ['key', 'where', 'value'] as const) if (c[k]) out.push([['count', k], c[k], []]);
    if (c.having) out.push([['count', 'having'], c.having, ['window']]);
  }
  if (r.write) out.push([['write', 'value'], r.write.value, r.sequence || r.absence ? ['first'] : []]);
  return out;
}

const cache = new Map<string, CompiledExpression>();

/** A compiled expression, from the cache when the same text was compiled before (config load, then the engine). */
export function compiled(src: string, extra: readonly ExtraVariable[] = []): CompiledExpression {
  const k = `${extra.join(',')}\u0000${src}`;
  let c = cache.get(k);
  if (!c) {
    c = compileExpression(src, extra);
    if (cache.size >= 4096) cache.clear();
    cache.set(k, c);
  }
  return c;
}
