/**
 * The analytics engine: routes each reading to the rules whose topic filter matches, reads the
 * rule's field, runs the rule's detectors and windows for that key (one key per concrete topic),
 * and returns the anomaly and aggregate events for the gateway to append to the ring log.
 *
 * Guarantees:
 * - `observe()` is synchronous and never throws for bad data: a payload without a number is counted
 *   (`sluice_analytics_skipped_total{reason="not_numeric"}`) and logged once per rule; a detector
 *   that throws is counted, logged, and replaced by a fresh one, and the rest of the batch goes on.
 * - Only `reading` events are analysed: anomalies and aggregates never feed back into the rules.
 * - State is bounded: at most `maxKeys` keys per rule (the least recently seen key is forgotten,
 *   its open windows emitted first), each detector and window bounded per key.
 * - Events produced off the intake path (a gap found by the clock, a window closed by silence) go
 *   to `ctx.emit` when given, else they are queued (bounded) and returned by the next `observe()`.
 * - Local actions are rate-limited per action; `publishLocal` failures never reach intake.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Counter, Registry } from 'prom-client';
import { registeredCounter as counter } from '../ops/metrics.js';
import type { EventInput, EventKind } from '../core/event.js';
import { Action } from './actions.js';
import type { Anomaly, Detector } from './detectors/detector.js';
import { createDetector, detectorSpec } from './detectors/index.js';
import { fieldReader } from './field.js';
import { topicMatcher } from './match.js';
import { type AnalyticsConfig, type AnalyticsRule, type DetectorSpec, windowName } from './schema.js';
import { VectorRule, type VectorHit } from './vector-rule.js';
import { createWindow, type WindowOp, type WindowResult } from './windows/window.js';

export interface ObservedEvent {
  seq: number;
  ts: number;
  topic: string;
  payload: unknown;
  kind: EventKind | string;
  deviceTs?: number;
  source?: string;
}

export interface AnalyticsContext {
  logger: Logger;
  registry: Registry;
  /** Publishes a message on the local broker (local actions). */
  publishLocal(topic: string, payload: string): void;
  /** Asks for a write to a device point (write actions); the write path checks and audits it. */
  write?(req: { driver: string; point: string; value: unknown; reason: string; requester: string }): void;
  /** Appends events found off the intake path (timer ticks); without it they wait for the next observe(). */
  emit?(events: EventInput[]): void;
  /** Clock tick for gap detection and idle window closing, ms (default 1000; 0 disables the timer). */
  tickMs?: number;
  /** Wall clock (tests). */
  now?: () => number;
  /**
   * Where detector state is kept across restarts (e.g. `<dataDir>/analytics-state.json`): loaded at
   * construction, written by close(). Window contents are not kept (a window open at a stop is lost).
   */
  stateFile?: string;
}

export interface AnalyticsStatus {
  total: number;
  byDetector: Record<string, number>;
  recent: object[];
  /** Clock-found events dropped because no emit() was wired and nobody called observe() for long. */
  droppedPending: number;
  rules: {
    name: string;
    keys: number;
    anomalies: number;
    aggregates: number;
    notNumeric: number;
    late: number;
    errors: number;
    evictedKeys: number;
    actionsPublished: number;
    actionsSuppressed: number;
  }[];
}

const RECENT = 20;
const MATCH_CACHE = 10_000;
/** Keys per rule kept across a restart (the most recently seen): bounds the state file (auto ≈ 40 KB of JSON per key). */
const STATE_KEYS = 256;
const MAX_PENDING = 10_000;
/** At most one log line per rule and kind of problem per this interval. */
const LOG_EVERY_MS = 60_000;

interface KeyState {
  topic: string;
  /** Second-chance LRU: when the key took its place in the map's order, and when it was last seen. */
  stamp: number;
  lastUse: number;
  detectors: Detector[];
  windows: WindowOp[];
  lastValue: number;
  lastSeq: number;
}

interface CompiledRule {
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

export class AnalyticsEngine {
  private readonly rules: CompiledRule[];
  private readonly anomaliesTotal: Counter<'detector'>;
  private readonly skipped: Counter<'rule' | 'reason'>;
  private readonly errorsTotal: Counter<'rule' | 'detector'>;
  private readonly aggregatesTotal: Counter<'rule'>;
  private readonly actionsTotal: Counter<'rule' | 'result'>;
  private readonly byDetector: Record<string, number> = {};
  private readonly recent: object[] = [];
  private pending: EventInput[] = [];
  private droppedPending = 0;
  private total = 0;
  private timer?: NodeJS.Timeout;
  private readonly now: () => number;
  /** Scratch list for window results (no allocation per reading). */
  private readonly results: WindowResult[] = [];
  private closed = false;

  constructor(
    rules: AnalyticsConfig,
    private readonly ctx: AnalyticsContext,
  ) {
    this.now = ctx.now ?? Date.now;
    this.rules = rules.map((rule) => ({
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
    }));
    for (const r of this.rules) {
      if (!r.rule.group) continue;
      r.vector = new VectorRule(
        r.rule,
        (device, err) => this.failed(r, 'multivariate', device, err, this.now()),
        (reason) => {
          if (reason === 'not_numeric') r.notNumeric++;
          this.skipped.inc({ rule: r.rule.name, reason });
        },
      );
    }
    const r = ctx.registry;
    this.anomaliesTotal = counter(r, 'sluice_anomalies_total', 'Anomaly events raised, by detector.', ['detector']);
    this.skipped = counter(
      r,
      'sluice_analytics_skipped_total',
      'Readings a rule could not use (not_numeric) or too late for its windows (late).',
      ['rule', 'reason'],
    );
    this.errorsTotal = counter(r, 'sluice_analytics_errors_total', 'Detectors that threw (reset and isolated).', [
      'rule',
      'detector',
    ]);
    this.aggregatesTotal = counter(r, 'sluice_analytics_aggregates_total', 'Window aggregate events produced.', [
      'rule',
    ]);
    this.actionsTotal = counter(
      r,
      'sluice_analytics_actions_total',
      'Local action messages published or suppressed by the rate limit.',
      ['rule', 'result'],
    );
    if (ctx.stateFile) this.loadState(ctx.stateFile);
    const tickMs = ctx.tickMs ?? 1000;
    if (tickMs > 0 && this.rules.length > 0) {
      this.timer = setInterval(() => this.tick(), tickMs);
      this.timer.unref();
    }
  }

  /** Judges a batch of appended events; returns the anomaly and aggregate events to append. */
  observe(events: ObservedEvent[]): EventInput[] {
    const out = this.pending.length > 0 ? this.takePending() : [];
    if (this.rules.length === 0) return out;
    const now = this.now();
    for (const e of events) {
      if (e.kind !== 'reading') continue;
      for (const r of this.rules) {
        if (!this.matches(r, e.topic)) continue;
        if (r.vector) {
          const hits: VectorHit[] = [];
          if (!r.vector.observe(e.topic, e.payload, e.seq, e.ts, hits)) this.logNotNumeric(r, e, now);
          for (const h of hits) out.push(this.vectorAnomaly(r, h, now));
          continue;
        }
        const x = r.read(e.payload);
        if (x === undefined) {
          r.notNumeric++;
          this.skipped.inc({ rule: r.rule.name, reason: 'not_numeric' });
          this.logNotNumeric(r, e, now);
          continue;
        }
        const key = this.key(r, e.topic, now, out);
        key.lastValue = x;
        key.lastSeq = e.seq;
        for (let i = 0; i < key.detectors.length; i++) {
          let a: Anomaly | null;
          try {
            a = key.detectors[i].process(x, e.ts);
          } catch (err) {
            this.detectorFailed(r, key, i, err, now);
            continue;
          }
          if (a) out.push(this.anomaly(r, key, key.detectors[i].type, a, x, e.seq, e.ts, now));
        }
        if (key.windows.length > 0) {
          const t = e.deviceTs !== undefined && Number.isFinite(e.deviceTs) ? e.deviceTs : e.ts;
          const results = this.results;
          for (let w = 0; w < key.windows.length; w++) {
            results.length = 0;
            if (key.windows[w].add(x, t, now, results) === 'late') {
              r.late++;
              this.skipped.inc({ rule: r.rule.name, reason: 'late' });
            }
            for (const res of results) out.push(this.aggregate(r, key, w, res));
          }
        }
      }
    }
    return out;
  }

  /** Runs the clock-driven checks now (the timer calls it every tick): gaps and idle windows. */
  tick(now = this.now()): EventInput[] {
    const out: EventInput[] = [];
    for (const r of this.rules) {
      if (r.vector) {
        const hits: VectorHit[] = [];
        r.vector.tick(now, hits);
        for (const h of hits) out.push(this.vectorAnomaly(r, h, now));
      }
      for (const key of r.keys.values()) {
        for (let i = 0; i < key.detectors.length; i++) {
          const d = key.detectors[i];
          if (!d.tick) continue;
          let a: Anomaly | null;
          try {
            a = d.tick(now);
          } catch (err) {
            this.detectorFailed(r, key, i, err, now);
            continue;
          }
          if (a) out.push(this.anomaly(r, key, d.type, a, key.lastValue, key.lastSeq, now, now));
        }
        for (let w = 0; w < key.windows.length; w++) {
          const results: WindowResult[] = [];
          key.windows[w].advance(now, results);
          for (const res of results) out.push(this.aggregate(r, key, w, res));
        }
      }
    }
    if (out.length > 0) this.deliver(out);
    return out;
  }

  /**
   * Takes over the state of the engine this one replaces (a hot reload): a rule whose matching,
   * field, detectors and windows did not change keeps its keys (detector and window state, so no
   * new warm-up); totals, counters and the recent list carry on. Call before the first observe().
   */
  adopt(previous: AnalyticsEngine): void {
    const stateful = statefulConfig;
    for (const r of this.rules) {
      const old = previous.rules.find((o) => o.rule.name === r.rule.name);
      if (!old) continue;
      r.anomalies = old.anomalies;
      r.aggregates = old.aggregates;
      r.notNumeric = old.notNumeric;
      r.late = old.late;
      r.errors = old.errors;
      r.evictedKeys = old.evictedKeys;
      if (stateful(old.rule) !== stateful(r.rule)) continue;
      r.keys = old.keys;
      r.clock = old.clock;
      old.keys = new Map();
      if (r.vector && old.vector) for (const [k, v] of old.vector.devices) r.vector.devices.set(k, v);
    }
    this.total = previous.total;
    Object.assign(this.byDetector, previous.byDetector);
    this.recent.push(...previous.recent);
    this.pending.push(...previous.takePending());
  }

  status(): AnalyticsStatus {
    return {
      total: this.total,
      byDetector: { ...this.byDetector },
      recent: [...this.recent],
      droppedPending: this.droppedPending,
      rules: this.rules.map((r) => ({
        name: r.rule.name,
        keys: r.vector ? r.vector.devices.size : r.keys.size,
        anomalies: r.anomalies,
        aggregates: r.aggregates,
        notNumeric: r.notNumeric,
        late: r.late,
        errors: r.errors,
        evictedKeys: r.evictedKeys,
        actionsPublished: r.actions.reduce((n, a) => n + a.published, 0),
        actionsSuppressed: r.actions.reduce((n, a) => n + a.suppressed, 0),
      })),
    };
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.ctx.stateFile && !this.closed) this.saveState(this.ctx.stateFile);
    this.closed = true;
  }

  /**
   * Writes the detectors' state (atomically: temp file, then rename), the most recently seen
   * STATE_KEYS keys of each rule. Never throws: a failure is logged and the next start warms up.
   */
  private saveState(file: string): void {
    try {
      const rules: Record<string, { config: string; keys: { topic: string; detectors: unknown[] }[]; vectors?: unknown }> = {};
      for (const r of this.rules) {
        const keys = [...r.keys.values()].sort((a, b) => b.lastUse - a.lastUse).slice(0, STATE_KEYS);
        rules[r.rule.name] = {
          config: statefulConfig(r.rule),
          keys: keys.map((k) => ({ topic: k.topic, detectors: k.detectors.map((d) => d.snapshot()) })),
          ...(r.vector ? { vectors: r.vector.snapshot() } : {}),
        };
      }
      const tmp = `${file}.tmp`;
      writeFileSync(tmp, JSON.stringify({ version: 1, savedAt: this.now(), rules }));
      renameSync(tmp, file);
    } catch (err) {
      this.ctx.logger.warn({ err: (err as Error).message, file }, 'analytics state not saved; detectors will warm up again after a restart');
    }
  }

  /** Restores the keys of rules whose matching, field, detectors and windows are unchanged. */
  private loadState(file: string): void {
    let saved: { version?: number; rules?: Record<string, { config: string; keys: { topic: string; detectors: unknown[] }[]; vectors?: unknown }> };
    try {
      saved = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.ctx.logger.warn({ err: (err as Error).message, file }, 'analytics state unreadable; detectors start fresh');
      }
      return;
    }
    if (saved.version !== 1 || !saved.rules) return;
    let restored = 0;
    let refused = 0;
    for (const r of this.rules) {
      const entry = saved.rules[r.rule.name];
      if (!entry || entry.config !== statefulConfig(r.rule) || !Array.isArray(entry.keys)) continue;
      if (r.vector) restored += r.vector.restore(entry.vectors);
      for (const k of entry.keys.slice(0, r.rule.maxKeys).reverse()) {
        if (typeof k?.topic !== 'string' || !Array.isArray(k.detectors)) continue;
        const key = this.key(r, k.topic, this.now(), []);
        k.detectors.forEach((snap, i) => {
          if (i >= key.detectors.length) return;
          try {
            key.detectors[i].restore(snap);
            key.detectors[i].resume?.();
          } catch {
            refused++;
            key.detectors[i] = createDetector(r.specs[i]);
          }
        });
        restored++;
      }
    }
    this.ctx.logger.info({ keys: restored, refused, file }, 'analytics state restored');
  }

  private deliver(events: EventInput[]): void {
    if (this.ctx.emit) {
      try {
        this.ctx.emit(events);
      } catch (err) {
        this.ctx.logger.warn({ err: (err as Error).message, n: events.length }, 'analytics events not handed over');
      }
      return;
    }
    for (const e of events) {
      if (this.pending.length >= MAX_PENDING) {
        this.droppedPending++;
        continue;
      }
      this.pending.push(e);
    }
  }

  private takePending(): EventInput[] {
    const p = this.pending;
    this.pending = [];
    return p;
  }

  /** The state of one key, created on first sight; beyond maxKeys the least recently seen key goes. */
  private key(r: CompiledRule, topic: string, now: number, out: EventInput[]): KeyState {
    const use = ++r.clock;
    let key = r.keys.get(topic);
    if (key) {
      key.lastUse = use;
      return key;
    }
    if (r.keys.size >= r.rule.maxKeys) {
      // Second chance (clock) LRU: a key seen since it took its place goes to the back instead of
      // out; no map reordering on every reading, evictions amortised O(1).
      let old: KeyState | undefined;
      for (const [t, k] of r.keys) {
        r.keys.delete(t);
        if (k.lastUse > k.stamp) {
          k.stamp = use;
          r.keys.set(t, k);
          continue;
        }
        old = k;
        break;
      }
      if (!old) throw new Error('unreachable: no key to evict');
      r.evictedKeys++;
      // Its open windows are emitted, not lost.
      for (let w = 0; w < old.windows.length; w++) {
        const results: WindowResult[] = [];
        old.windows[w].advance(Infinity, results);
        for (const res of results) out.push(this.aggregate(r, old, w, res));
      }
      this.logOnce(
        r,
        'evicted',
        now,
        { maxKeys: r.rule.maxKeys },
        `rule "${r.rule.name}" tracks more than ${r.rule.maxKeys} topics; the least recently seen ones are forgotten`,
      );
    }
    key = {
      topic,
      stamp: use,
      lastUse: use,
      detectors: r.specs.map((s) => createDetector(s)),
      windows: r.rule.windows.map((w) => createWindow(w, w.lateness ?? r.rule.lateness)),
      lastValue: Number.NaN,
      lastSeq: 0,
    };
    r.keys.set(topic, key);
    return key;
  }

  /** True when some rule looks at readings on this topic (the others need not be shown to observe()). */
  watches(topic: string): boolean {
    for (const r of this.rules) if (this.matches(r, topic)) return true;
    return false;
  }

  private matches(r: CompiledRule, topic: string): boolean {
    let m = r.matchCache.get(topic);
    if (m === undefined) {
      m = r.matches(topic);
      if (r.matchCache.size >= MATCH_CACHE) r.matchCache.clear();
      r.matchCache.set(topic, m);
    }
    return m;
  }

  private logNotNumeric(r: CompiledRule, e: ObservedEvent, now: number): void {
    const where = r.rule.field ? ` at "${r.rule.field}"` : '';
    const msg = `rule "${r.rule.name}": a payload on ${e.topic} has no number${where}; such readings are skipped and counted`;
    this.logOnce(r, 'not_numeric', now, { topic: e.topic, seq: e.seq }, msg);
  }

  private vectorAnomaly(r: CompiledRule, h: VectorHit, now: number): EventInput {
    return this.anomaly(r, { topic: h.device }, 'multivariate', h.anomaly, h.values, h.seq, h.ts, now, h.contributions);
  }

  private detectorFailed(r: CompiledRule, key: KeyState, i: number, err: unknown, now: number): void {
    this.failed(r, r.specs[i].type, key.topic, err, now);
    key.detectors[i] = createDetector(r.specs[i]);
  }

  /** Counts and logs a detector that threw (the caller replaces it with a fresh one). */
  private failed(r: CompiledRule, type: string, topic: string, err: unknown, now: number): void {
    r.errors++;
    this.errorsTotal.inc({ rule: r.rule.name, detector: type });
    this.logOnce(
      r,
      `error:${type}`,
      now,
      { topic, err: (err as Error)?.message },
      `rule "${r.rule.name}": detector ${type} failed and was reset`,
    );
  }

  private anomaly(
    r: CompiledRule,
    key: Pick<KeyState, 'topic'>,
    detector: string,
    a: Anomaly,
    value: number | Record<string, number>,
    seq: number,
    ts: number,
    now: number,
    contributions?: Record<string, number>,
  ): EventInput {
    const payload = {
      rule: r.rule.name,
      detector,
      score: Math.round(a.score * 1e4) / 1e4,
      reason: a.reason,
      value,
      topic: key.topic,
      sourceSeq: seq,
      sourceTs: ts,
      ...(a.window ? { window: a.window } : {}),
      ...(contributions ? { contributions } : {}),
    };
    this.total++;
    r.anomalies++;
    this.byDetector[detector] = (this.byDetector[detector] ?? 0) + 1;
    this.anomaliesTotal.inc({ detector });
    this.recent.unshift({ ts: now, ...payload });
    if (this.recent.length > RECENT) this.recent.pop();
    for (const action of r.actions) {
      const msg = action.fire(
        { rule: r.rule.name, topic: key.topic, detector, value, score: a.score, reason: a.reason, payload },
        now,
      );
      if (msg === undefined) continue;
      if (msg === 'suppressed') {
        this.actionsTotal.inc({ rule: r.rule.name, result: 'suppressed' });
        continue;
      }
      this.actionsTotal.inc({ rule: r.rule.name, result: 'published' });
      try {
        if ('write' in msg) {
          this.ctx.write?.({
            ...msg.write,
            reason: `anomaly on ${key.topic}: ${a.reason}`,
            requester: `analytics:${r.rule.name}`,
          });
          continue;
        }
        this.ctx.publishLocal(msg.topic, msg.payload);
      } catch (err) {
        this.ctx.logger.warn({ err: (err as Error).message, topic: 'topic' in msg ? msg.topic : undefined }, 'local action not published');
      }
    }
    return {
      source: 'analytics',
      kind: 'anomaly',
      topic: r.rule.anomalyTopic.replaceAll('{topic}', key.topic).replaceAll('{rule}', r.rule.name),
      payload,
    };
  }

  private aggregate(r: CompiledRule, key: KeyState, w: number, res: WindowResult): EventInput {
    const spec = r.rule.windows[w];
    const name = r.windowNames[w];
    r.aggregates++;
    this.aggregatesTotal.inc({ rule: r.rule.name });
    return {
      source: 'analytics',
      kind: 'aggregate',
      topic: spec.topic.replaceAll('{topic}', key.topic).replaceAll('{window}', name).replaceAll('{rule}', r.rule.name),
      payload: {
        rule: r.rule.name,
        window: name,
        type: spec.type,
        topic: key.topic,
        start: res.start,
        end: res.end,
        ...res.values,
      },
    };
  }

  private logOnce(r: CompiledRule, kind: string, now: number, fields: object, msg: string): void {
    if (now - (r.loggedAt[kind] ?? -Infinity) < LOG_EVERY_MS) return;
    r.loggedAt[kind] = now;
    this.ctx.logger.warn(fields, msg);
  }
}

/** The part of a rule its state depends on: state is carried over only while this is unchanged. */
function statefulConfig(r: AnalyticsRule): string {
  return JSON.stringify([r.match, r.field, r.detector, r.windows, r.lateness, r.maxKeys, r.group]);
}
