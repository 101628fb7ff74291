/**
 * The intake pipeline: the one path into the ring log for every source (broker, drivers, HTTP
 * ingest), and what looks at the events once they are durable.
 *
 *   events ─▶ filter (drop rules) ─▶ ring log append ─▶ derivers (analytics, then rules) ─▶ derived events
 *              │                                           │                                  │
 *              └▶ input taps (dashboard's latest readings)   └─ only the topics they watch      └▶ ring log
 *                                                                                                └▶ derived taps (alarm list, republishing)
 *
 * Guarantees:
 * - `ingest` resolves once the input events are durable; the ring log has copied them by then, so
 *   callers need not keep them;
 * - what drop rules remove never reaches the log (they count it);
 * - a deriver sees an event only after it is durable, with its final `seq`;
 * - analytics' derived events (aggregates, anomalies) are shown to rules once they are durable;
 *   rules' own derived events are not shown to rules again (no feedback loop);
 * - a derived batch that cannot be stored is logged, never thrown at the source that caused it.
 */
import type { Logger } from 'pino';
import type { AppendResult, RingLog } from '../../buffer/types.js';
import type { ObservedEvent } from '../analytics/index.js';
import { type EventInput, isBinaryPayload } from '../core/event.js';

/** Looks at durable events on the topics it watches and may derive new events (analytics, rules). */
export interface Deriver {
  watches(topic: string): boolean;
  observe(events: ObservedEvent[]): EventInput[];
}

/** Rules that remove events before the durable point. */
export interface IntakeFilter {
  readonly dropping: boolean;
  keep(events: EventInput[]): EventInput[];
}

/** Sees each input batch as it is handed to the log; takes what it needs at once (it must not keep the batch). */
export interface InputTap {
  observe(events: readonly EventInput[]): void;
}

export type DerivedSource = 'analytics' | 'rules';

/** Sees each derived batch once it is durable (the dashboard's alarm list, republishing). */
export type DerivedTap = (events: readonly EventInput[], firstSeq: number, source: DerivedSource) => void;

export interface IntakeOptions {
  /** The open ring log (throws while the gateway is not started). */
  log(): RingLog;
  logger: Logger;
  /** Counts events stored, per source (`ingested_events_total{source}`). */
  ingested: { inc(labels: { source: string }, n: number): void };
  /** Counts events analytics and rules watch but cannot read (`sluice_analytics_skipped_total{reason}`). */
  skipped?: { inc(labels: { reason: string }): void };
  /** The current analytics engine, if any (it is replaced on reconfigure, so asked each time). */
  analytics(): Deriver | undefined;
  /** The current rules engine, if any: a filter before the log and a deriver after it. */
  rules(): (Deriver & IntakeFilter) | undefined;
  inputTaps?: InputTap[];
  derivedTaps?: DerivedTap[];
  /** Told how long each input batch took to become durable (seconds), with its source and size. */
  durable?(source: string, n: number, seconds: number): void;
}

/** What ingest resolves with when drop rules removed every event of a batch: an empty range. */
export const NOTHING_APPENDED: AppendResult = Object.freeze({ firstSeq: 0, lastSeq: -1 });

export class Intake {
  /** Events received from sources and stored (after drop rules). */
  received = 0;

  constructor(private readonly opts: IntakeOptions) {}

  /**
   * Appends durably, then lets analytics and rules look at the events and appends what they derive.
   * Resolves once the input events are durable.
   */
  ingest(events: EventInput[]): Promise<AppendResult> {
    const rules = this.opts.rules();
    // Drop rules run before the durable point: what they remove is never stored (and is counted).
    if (rules?.dropping) {
      events = rules.keep(events);
      if (events.length === 0) return Promise.resolve(NOTHING_APPENDED);
    }
    const started = performance.now();
    const appended = this.opts.log().append(events);
    // Whatever looks at the events takes what it needs now. A closure here that held the batch until
    // its commit would carry thousands of objects (and the broker's buffers) across garbage
    // collections: V8 keeps one context per call for all of its closures.
    for (const tap of this.opts.inputTaps ?? []) tap.observe(events);
    const analytics = this.opts.analytics();
    const watched = analytics || rules ? this.watched(events, [analytics, rules]) : [];
    return appended.then(this.afterAppend(events.length, events[0]?.source ?? 'unknown', watched, started));
  }

  /** Appends what analytics or rules produced; rules also see analytics' events (aggregates, anomalies). */
  appendDerived(derived: EventInput[], source: DerivedSource = 'analytics'): void {
    const rules = source === 'analytics' ? this.opts.rules() : undefined;
    const watched = rules ? this.watched(derived, [rules]) : [];
    this.opts
      .log()
      .append(derived)
      .then(
        (result) => {
          this.opts.ingested.inc({ source }, derived.length);
          for (const tap of this.opts.derivedTaps ?? []) tap(derived, result.firstSeq, source);
          if (watched.length === 0 || !rules) return;
          for (const e of watched) e.seq += result.firstSeq;
          const ruled = rules.observe(watched);
          if (ruled.length > 0) this.appendDerived(ruled, 'rules');
        },
        (err) => this.opts.logger.error({ err: (err as Error).message, n: derived.length, source }, 'derived events not stored'),
      );
  }

  /** What runs once a batch is durable (made apart from `ingest` so it cannot hold the batch). */
  private afterAppend(n: number, source: string, watched: ObservedEvent[], started: number): (result: AppendResult) => AppendResult {
    return (result) => {
      this.opts.durable?.(source, n, (performance.now() - started) / 1000);
      this.received += n;
      this.opts.ingested.inc({ source }, n);
      // The batch is durable: whatever a deriver does wrong now must not fail it (the client would
      // resend what is already stored).
      if (watched.length > 0) {
        try {
          this.analyse(watched, result.firstSeq);
        } catch (err) {
          this.opts.logger.error({ err: (err as Error).message, n, source }, 'analytics or rules failed on stored events; they are kept');
        }
      }
      return result;
    };
  }

  /**
   * The events a deriver looks at (reading `payload` parses an MQTT body, so only these are), their
   * `seq` relative to the batch until it is known.
   */
  private watched(events: EventInput[], derivers: (Deriver | undefined)[]): ObservedEvent[] {
    const now = Date.now();
    const watched: ObservedEvent[] = [];
    for (let i = 0; i < events.length; i++) {
      const e = events[i];
      if (!derivers.some((d) => d?.watches(e.topic))) continue;
      // Bytes are stored and forwarded, but nothing here can read them: counted, never logged per event.
      if (e.body !== undefined && isBinaryPayload(e.payload)) {
        this.opts.skipped?.inc({ reason: 'binary' });
        continue;
      }
      watched.push({ seq: i, ts: e.ts ?? now, topic: e.topic, payload: e.payload, kind: e.kind ?? 'reading', deviceTs: e.deviceTs, source: e.source });
    }
    return watched;
  }

  private analyse(watched: ObservedEvent[], firstSeq: number): void {
    for (const e of watched) e.seq += firstSeq;
    const derived = this.opts.analytics()?.observe(watched) ?? [];
    if (derived.length > 0) this.appendDerived(derived);
    const ruled = this.opts.rules()?.observe(watched) ?? [];
    if (ruled.length > 0) this.appendDerived(ruled, 'rules');
  }
}
