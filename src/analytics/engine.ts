/**
 * The analytics engine: routes each reading to the rules whose topic filter matches, reads the
 * rule's field, runs the rule's detectors and windows for that key (one key per concrete topic),
 * and returns the anomaly and aggregate events for the intake (src/intake) to append to the ring log.
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
import type { EventInput } from '../core/event.js';
import { type CompiledRule, compileRule, type KeyState, matches, statefulConfig } from './compiled.js';
import type { Anomaly } from './detectors/detector.js';
import { createDetector } from './detectors/index.js';
import { aggregateEvent, anomalyEvent, anomalyPayload } from './derived.js';
import { type AnalyticsMetrics, analyticsMetrics } from './metrics.js';
import type { AnalyticsConfig } from './schema.js';
import { loadState, saveState } from './state-file.js';
import type { AnalyticsContext, AnalyticsStatus, ObservedEvent } from './types.js';
import { VectorRule, type VectorHit } from './vector-rule.js';
import { createWindow, type WindowResult } from './windows/window.js';

export type { AnalyticsContext, AnalyticsStatus, ObservedEvent } from './types.js';

const RECENT = 20;
const MAX_PENDING = 10_000;
/** At most one log line per rule and kind of problem per this interval. */
const LOG_EVERY_MS = 60_000;

export class AnalyticsEngine {
  private readonly rules: CompiledRule[];
  private readonly metrics: AnalyticsMetrics;
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
    this.rules = rules.map(compileRule);
    for (const r of this.rules) {
      if (!r.rule.group) continue;
      r.vector = new VectorRule(
        r.rule,
        (device, err) => this.failed(r, 'multivariate', device, err, this.now()),
        (reason) => {
          if (reason === 'not_numeric') r.notNumeric++;
          this.metrics.skipped.inc({ rule: r.rule.name, reason });
        },
      );
    }
    this.metrics = analyticsMetrics(ctx.registry);
    if (ctx.stateFile) loadState(ctx.stateFile, this.rules, (r, topic) => this.key(r, topic, this.now(), []), this.ctx.logger);
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
        if (!matches(r, e.topic)) continue;
        if (r.vector) {
          const hits: VectorHit[] = [];
          if (!r.vector.observe(e.topic, e.payload, e.seq, e.ts, hits)) this.logNotNumeric(r, e, now);
          for (const h of hits) out.push(this.vectorAnomaly(r, h, now));
          continue;
        }
        const x = r.read(e.payload);
        if (x === undefined) {
          r.notNumeric++;
          this.metrics.skipped.inc({ rule: r.rule.name, reason: 'not_numeric' });
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
              this.metrics.skipped.inc({ rule: r.rule.name, reason: 'late' });
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
    if (this.ctx.stateFile && !this.closed) saveState(this.ctx.stateFile, this.rules, this.now(), this.ctx.logger);
    this.closed = true;
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
    for (const r of this.rules) if (matches(r, topic)) return true;
    return false;
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
    this.metrics.errors.inc({ rule: r.rule.name, detector: type });
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
    const payload = anomalyPayload(r, key.topic, detector, a, value, seq, ts, contributions);
    this.total++;
    r.anomalies++;
    this.byDetector[detector] = (this.byDetector[detector] ?? 0) + 1;
    this.metrics.anomalies.inc({ detector });
    this.recent.unshift({ ts: now, ...payload });
    if (this.recent.length > RECENT) this.recent.pop();
    for (const action of r.actions) {
      const msg = action.fire(
        { rule: r.rule.name, topic: key.topic, detector, value, score: a.score, reason: a.reason, payload },
        now,
      );
      if (msg === undefined) continue;
      if (msg === 'suppressed') {
        this.metrics.actions.inc({ rule: r.rule.name, result: 'suppressed' });
        continue;
      }
      this.metrics.actions.inc({ rule: r.rule.name, result: 'published' });
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
    return anomalyEvent(r, key.topic, payload);
  }

  private aggregate(r: CompiledRule, key: KeyState, w: number, res: WindowResult): EventInput {
    r.aggregates++;
    this.metrics.aggregates.inc({ rule: r.rule.name });
    return aggregateEvent(r, key.topic, w, res);
  }

  private logOnce(r: CompiledRule, kind: string, now: number, fields: object, msg: string): void {
    if (now - (r.loggedAt[kind] ?? -Infinity) < LOG_EVERY_MS) return;
    r.loggedAt[kind] = now;
    this.ctx.logger.warn(fields, msg);
  }
}
