/**
 * Analytics rules: which topics are watched, which field, by which detectors, over which windows,
 * and what an anomaly does locally. Every object is strict; a problem is reported with the rule's
 * name (`rule "temp": ...`) as well as its path, so a long config is quick to fix.
 */
import { z } from 'zod';
import { duration, name, topicFilter, topicName, republishSchema } from '../core/config-types.js';

const confidence = () => z.number().gt(50).lt(100);

export const autoSpec = z.strictObject({
  type: z.literal('auto'),
  /** Score from which a reading is reported (0..1). */
  threshold: z.number().gt(0).max(1).optional(),
  /** Readings learned before judging. */
  warmup: z.number().int().min(10).max(100_000).optional(),
  /** Readings of silence after an anomaly (one incident, one event). */
  rest: z.number().int().min(0).max(100_000).optional(),
  /** Also run a `change-point` detector (its defaults) and report the higher of the two scores. */
  changePoint: z.boolean().optional(),
});

/** Options of the `multivariate` detector (a rule with `group`): see detectors/multivariate.ts. */
export const multivariateSpec = z.strictObject({
  type: z.literal('multivariate'),
  /** Vectors learned before judging; default max(60, 2 × variables). */
  warmup: z.number().int().min(8).max(100_000).optional(),
  /** Vectors after which a vector's weight in the learned normal has halved (slow: a fault is not learned away). */
  halfLife: z.number().int().min(10).max(10_000_000).default(2000),
  /** In-control confidence of the T² and CUSUM tests, %: about one false alarm per 1 / (1 − confidence) vectors. */
  confidence: confidence().default(99.9),
  /** Score from which a vector is reported (0.5: at a test's limit). */
  threshold: z.number().gt(0).max(1).default(0.5),
  /** Vectors of silence after an anomaly (one incident, one event). */
  rest: z.number().int().min(0).max(100_000).default(30),
  /** Beside the instant T² test, a CUSUM on the same score for sustained shifts. */
  changePoint: z.boolean().default(true),
});

export const detectorSpecSchema = z.discriminatedUnion('type', [
  autoSpec,
  multivariateSpec,
  z.strictObject({
    type: z.literal('threshold'),
    high: z.number().optional(),
    low: z.number().optional(),
    /** The alarm clears only once the value is back inside by this margin. */
    hysteresis: z.number().min(0).default(0),
  }),
  z.strictObject({
    type: z.literal('rate-of-change'),
    /** Largest allowed change per second. */
    maxRate: z.number().positive().optional(),
    /** Largest allowed change from one reading to the next. */
    maxDelta: z.number().positive().optional(),
  }),
  z.strictObject({
    type: z.literal('flatline'),
    /** Consecutive readings within `tolerance` that make a flatline. */
    count: z.number().int().min(2).max(1_000_000).default(10),
    tolerance: z.number().min(0).default(0),
    /** And at least this long. */
    duration: duration().optional(),
  }),
  z.strictObject({
    type: z.literal('gap'),
    /** Expected interval between readings; learned from the stream when absent. */
    interval: duration().optional(),
    /** Silence of more than `factor` × interval is a gap. */
    factor: z.number().gt(1).max(1000).default(3),
  }),
  z.strictObject({
    type: z.literal('zscore'),
    window: z.number().int().min(5).max(4096).default(64),
    threshold: z.number().positive().default(3.5),
    warmup: z.number().int().min(3).max(4096).default(16),
  }),
  z.strictObject({
    type: z.literal('ewma'),
    lambda: z.number().gt(0).max(1).default(0.2),
    /** Control limit L, in σ of the statistic. */
    limit: z.number().positive().default(3),
    warmup: z.number().int().min(2).max(100_000).default(30),
  }),
  z.strictObject({
    type: z.literal('spike-and-dip'),
    confidence: confidence().default(99),
    historySize: z.number().int().min(10).max(4096).default(120),
    mode: z.enum(['spikes', 'dips', 'spikesanddips']).default('spikesanddips'),
  }),
  z.strictObject({
    type: z.literal('change-point'),
    confidence: confidence().default(99),
    historySize: z.number().int().min(10).max(100_000).default(120),
  }),
]);

export const DETECTOR_TYPES = [
  'auto',
  'threshold',
  'rate-of-change',
  'flatline',
  'gap',
  'zscore',
  'ewma',
  'spike-and-dip',
  'change-point',
  'multivariate',
] as const;

/** A detector by name (its defaults) or with options. */
const NOT_A_DETECTOR = `is not a detector: use one of ${DETECTOR_TYPES.join(', ')}, or {type: NAME, ...options}`;
const detectorRef = z.union([z.enum(DETECTOR_TYPES), detectorSpecSchema], { error: NOT_A_DETECTOR });
const detectorList = z.array(detectorRef).min(1).max(16);

/**
 * One detector or a list. Parsed by shape (not as a union of the two) so that a problem in a list
 * is reported at its index (`detector.2`), not as "no alternative matched".
 */
const detectorField = z.unknown().optional().transform((v, ctx): z.output<typeof detectorRef> | z.output<typeof detectorList> | undefined => {
  if (v === undefined) return undefined;
  const r = Array.isArray(v) ? detectorList.safeParse(v) : detectorRef.safeParse(v);
  if (r.success) return r.data;
  for (const issue of r.error.issues) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
  return z.NEVER;
});

export const AGGREGATES = /^(count|sum|min|max|mean|stddev|rate|last|p(\d{1,2}(\.\d{1,3})?))$/;

export const windowSchema = z.strictObject({
  /** Names the window in aggregate events; default `<type>-<size>`. */
  name: name().optional(),
  type: z.enum(['tumbling', 'hopping', 'sliding', 'session']),
  /** Window length (tumbling, hopping, sliding); for a session, its longest span. */
  size: duration().optional(),
  /** Hopping: how far each window starts after the previous. */
  hop: duration().optional(),
  /** Session: silence that ends a session. */
  gap: duration().optional(),
  aggregates: z
    .array(z.string().regex(AGGREGATES, 'is not an aggregate (count, sum, min, max, mean, stddev, rate, last, pNN)'))
    .min(1)
    .default(['count', 'mean', 'min', 'max']),
  /** How late (event time) a reading may arrive and still count; default the rule's `lateness`. */
  lateness: duration().optional(),
  /** Topic of the aggregate events; `{topic}` is the source topic, `{window}` the window's name. */
  topic: z.string().min(1).default('{topic}/{window}'),
  /** Sliding windows: most readings held per key. */
  maxEvents: z.number().int().min(1).max(100_000).default(1000),
});

/**
 * A device vector: the readings of one device (several topics, several fields) judged together by
 * the `multivariate` detector. The device is the first `deviceLevels` levels of the topic
 * (`pump/7` of `pump/7/pressure`); the variable is the rest of the topic, with `.field` when
 * `fields` are listed (`pressure`, `motor.current`).
 */
export const groupSchema = z.strictObject({
  /** Topic levels naming the device; default: the levels of `match` before its `#` (all but the last without one). */
  deviceLevels: z.number().int().min(0).max(32).optional(),
  /** Payload fields read from each reading, each a variable; default the rule's `field` (or the number / its `value`). */
  fields: z.array(z.string().min(1)).min(1).max(64).optional(),
  /** The variables, in order; default: those a device shows in its first `align` period (sorted). */
  variables: z.array(z.string().min(1)).min(1).max(256).optional(),
  /** Readings of a device that arrive within this time of the first make one vector. */
  align: duration().default(1000),
  /** A variable that has not reported for this long holds the vector back (default 10 × align). */
  maxAge: duration().optional(),
});

export const actionSchema = z.strictObject({
  /** Topic published on the local broker, e.g. `plant/valve/cmd`; `{topic}` and `{rule}` are replaced. */
  topic: z.string().min(1).optional(),
  /**
   * Instead of a message: write a value to a driver's point declared `writable`, through the write
   * path (its limits, rate limit and audit events apply).
   */
  write: z
    .strictObject({
      driver: name(),
      point: name(),
      value: z.union([z.number(), z.boolean(), z.string()]),
    })
    .optional(),
  /**
   * Message body: a string or a JSON object; `{rule}`, `{topic}`, `{detector}`, `{value}`, `{score}`,
   * `{reason}` are replaced. Default: the anomaly event's payload.
   */
  payload: z.union([z.string(), z.record(z.string(), z.unknown())]).optional(),
  /** Only anomalies scoring at least this trigger the action. */
  minScore: z.number().min(0).max(1).default(0),
  /** Only anomalies of these detectors trigger the action (default: all). */
  detectors: z.array(z.enum(DETECTOR_TYPES)).optional(),
  /** At most one message per this interval: a flapping sensor cannot storm the actuator. */
  minInterval: duration().default(10_000),
});

export const analyticsRuleSchema = z
  .strictObject({
    name: name(),
    match: topicFilter(),
    /** Path into the payload (`value`, `a.b.c`, `readings.0`); without one, a numeric payload or its `value`. */
    field: z.string().min(1).optional(),
    /** One detector or several, each by name or `{type, ...options}`; default `auto`, with `group` `multivariate`. */
    detector: detectorField,
    /** Judge a device's readings together (see groupSchema): the detector is `multivariate`. */
    group: groupSchema.optional(),
    /** Topic of the anomaly events; `{topic}` is the source topic, `{rule}` the rule's name. */
    anomalyTopic: z.string().min(1).default('{topic}/anomaly'),
    /** Also publish this rule's anomalies and aggregates on the gateway's own broker, once durable. */
    republish: republishSchema.optional(),
    /** Keys (distinct topics) tracked at most; the least recently seen one is forgotten beyond. */
    maxKeys: z.number().int().min(1).max(1_000_000).default(1000),
    /** Default allowed lateness of event time (`deviceTs`) for the windows. */
    lateness: duration().default(0),
    windows: z.array(windowSchema).max(16).default([]),
    actions: z.array(actionSchema).max(16).default([]),
  })
  .transform((rule) => ({ ...rule, detector: rule.detector ?? (rule.group ? 'multivariate' : 'auto') }))
  .superRefine((rule, ctx) => {
    const specs = Array.isArray(rule.detector) ? rule.detector : [rule.detector];
    const multi = specs.filter((d) => (typeof d === 'string' ? d : d.type) === 'multivariate').length;
    if (rule.group && (multi !== 1 || specs.length !== 1)) {
      ctx.addIssue({ code: 'custom', path: ['detector'], message: 'a rule with group takes one detector: multivariate' });
    }
    if (!rule.group && multi > 0) {
      ctx.addIssue({ code: 'custom', path: ['group'], message: 'the multivariate detector needs group (which readings make a device vector)' });
    }
    if (rule.group && rule.windows.length > 0) {
      ctx.addIssue({ code: 'custom', path: ['windows'], message: 'windows are per topic: put them in a rule without group' });
    }
    specs.forEach((d, i) => {
      const path = Array.isArray(rule.detector) ? ['detector', i] : ['detector'];
      if (typeof d === 'string') return;
      if (d.type === 'threshold' && d.high === undefined && d.low === undefined) {
        ctx.addIssue({ code: 'custom', path, message: 'a threshold detector needs high, low or both' });
      }
      if (d.type === 'threshold' && d.high !== undefined && d.low !== undefined && d.low >= d.high) {
        ctx.addIssue({ code: 'custom', path, message: `low (${d.low}) must be below high (${d.high})` });
      }
      if (d.type === 'rate-of-change' && d.maxRate === undefined && d.maxDelta === undefined) {
        ctx.addIssue({ code: 'custom', path, message: 'a rate-of-change detector needs maxRate, maxDelta or both' });
      }
    });
    rule.windows.forEach((w, i) => {
      const need = (key: 'size' | 'hop' | 'gap') => {
        if (w[key] === undefined || !(w[key] > 0)) {
          ctx.addIssue({
            code: 'custom',
            path: ['windows', i, key],
            message: `a ${w.type} window needs a positive ${key}`,
          });
        }
      };
      if (w.type === 'session') need('gap');
      else need('size');
      if (w.type === 'hopping') {
        need('hop');
        if (w.hop !== undefined && w.size !== undefined && w.hop > 0 && w.size / w.hop > 100) {
          ctx.addIssue({
            code: 'custom',
            path: ['windows', i, 'hop'],
            message: 'hop must be at least size/100 (at most 100 open windows per key)',
          });
        }
      }
    });
    const names = new Set<string>();
    rule.windows.forEach((w, i) => {
      const n = windowName(w);
      if (names.has(n))
        ctx.addIssue({ code: 'custom', path: ['windows', i, 'name'], message: `duplicate window name "${n}"` });
      names.add(n);
    });
    rule.actions.forEach((a, i) => {
      if ((a.topic === undefined) === (a.write === undefined)) {
        ctx.addIssue({ code: 'custom', path: ['actions', i], message: 'an action has either a topic (a message) or a write' });
        return;
      }
      if (a.topic === undefined) return;
      const probe = a.topic.replaceAll('{topic}', 'x').replaceAll('{rule}', 'x');
      if (!topicName().safeParse(probe).success) {
        ctx.addIssue({
          code: 'custom',
          path: ['actions', i, 'topic'],
          message: 'is not a valid MQTT topic (no + or #)',
        });
      }
    });
  });

export type AnalyticsRule = z.output<typeof analyticsRuleSchema>;
export type DetectorSpec = z.output<typeof detectorSpecSchema>;
export type DetectorRef = z.output<typeof detectorRef>;
export type WindowSpec = z.output<typeof windowSchema>;
export type ActionSpec = z.output<typeof actionSchema>;
export type GroupSpec = z.output<typeof groupSchema>;

/** A window's name in events: its `name`, else `<type>-<size>` (e.g. `tumbling-60s`). */
export function windowName(w: Pick<WindowSpec, 'name' | 'type' | 'size' | 'gap'>): string {
  if (w.name) return w.name;
  const span = w.type === 'session' ? w.gap : w.size;
  return `${w.type}-${span !== undefined && span % 1000 === 0 ? `${span / 1000}s` : `${span}ms`}`;
}

/**
 * The rules list. Each rule is parsed on its own so that every problem names its rule; rule names
 * must be unique (they key metrics and state).
 */
export const analyticsSchema = z
  .array(z.unknown())
  .default([])
  .transform((items, ctx) => {
    const rules: AnalyticsRule[] = [];
    const seen = new Set<string>();
    items.forEach((item, i) => {
      const label =
        item && typeof item === 'object' && typeof (item as { name?: unknown }).name === 'string'
          ? `rule "${(item as { name: string }).name}"`
          : `rule #${i + 1}`;
      const r = analyticsRuleSchema.safeParse(item);
      if (!r.success) {
        for (const issue of r.error.issues) {
          ctx.addIssue({ code: 'custom', path: [i, ...issue.path], message: `${label}: ${issue.message}` });
        }
        return;
      }
      if (seen.has(r.data.name)) {
        ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `${label}: duplicate rule name` });
      }
      seen.add(r.data.name);
      rules.push(r.data);
    });
    return rules;
  });

export type AnalyticsConfig = z.output<typeof analyticsSchema>;
