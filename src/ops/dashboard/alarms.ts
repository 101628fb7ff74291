/**
 * The dashboard's alarm list: anomalies (analytics detectors) and alarms (rules), newest first,
 * each with its rule, severity, value with unit and one sentence a technician can read, and an
 * acknowledgement that survives a restart.
 *
 * - Fed by the gateway with every derived batch once it is in the log (`observe`, with the seq the
 *   log gave it: the alarm's id, never reused); after a restart refilled from the newest part of
 *   the ring log (`seed`, a bounded scan), so the list does not start empty.
 * - Bounded: the newest `max` alarms are held; acknowledgements are kept for the newest `maxAcks`
 *   ids in `<dataDir>/dashboard-acks.json`, written atomically.
 */
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../../fleet/atomic.js';
import type { StoredEvent } from '../../core/event.js';
import { alarmPayloadFor, type ScannableLog, scanNewest } from './history.js';
import { unitOf } from './readings.js';

export interface Alarm {
  /** The event's seq in the ring log. */
  id: number;
  ts: number;
  /** When the reading that raised it was taken, where the payload says. */
  readingTs: number | null;
  kind: 'anomaly' | 'alarm';
  rule: string;
  detector: string | null;
  severity: string;
  /** The topic the alarm is about (the reading's, not the anomaly event's). */
  topic: string;
  value: number | null;
  unit: string | null;
  /** One sentence for a person. */
  text: string;
  /** What the detector measured, for whoever wants the statistics. */
  detail: string | null;
  acked: { at: number } | null;
}

export interface DerivedLike {
  kind?: string;
  ts?: number;
  topic: string;
  payload: unknown;
}

const DETECTOR_WORDS: Record<string, [up: string, down: string]> = {
  threshold: ['is above its limit', 'is below its limit'],
  zscore: ['is unusually high', 'is unusually low'],
  'spike-and-dip': ['spiked', 'dipped'],
  ewma: ['is drifting high', 'is drifting low'],
  'change-point': ['shifted up', 'shifted down'],
  'rate-of-change': ['is changing too fast', 'is changing too fast'],
  flatline: ['is stuck', 'is stuck'],
};

function fmt(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 0.01)) return v.toPrecision(3);
  return String(Math.round(v * 100) / 100);
}

/** "sensors/tank/temp is unusually high at 85.2 °C" from a detector's payload. */
export function describe(p: Record<string, unknown>, kind: string, unit: string | null): string {
  const topic = String(p.topic ?? p.sourceTopic ?? 'a topic');
  const value = typeof p.value === 'number' ? p.value : null;
  const at = value === null ? '' : ` at ${fmt(value)}${unit ? ` ${unit}` : ''}`;
  const reason = typeof p.reason === 'string' ? p.reason : '';
  if (kind === 'alarm') return `Rule ${String(p.rule ?? '')} raised an alarm on ${topic}${at}.`;
  if (/^no reading for/.test(reason)) return `${topic} went silent (${reason}).`;
  const words = DETECTOR_WORDS[String(p.detector)];
  const down = /\b(below|dip|down|low)\b/.test(reason);
  const verb = words ? words[down ? 1 : 0] : 'looks abnormal';
  return `${topic} ${verb}${at}.`;
}

export class AlarmList {
  private readonly alarms: Alarm[] = [];
  private readonly acks = new Map<number, number>();
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly opts: {
      /** The acknowledgement file (none: acknowledgements last until the process ends). */
      file?: string;
      max?: number;
      maxAcks?: number;
      /** The unit the latest readings of a topic named. */
      unitOf?: (topic: string) => string | undefined;
    } = {},
  ) {}

  private get max() {
    return this.opts.max ?? 200;
  }

  /** Reads the acknowledgements back; a missing or damaged file means none. */
  async load(): Promise<void> {
    if (!this.opts.file) return;
    try {
      const data = JSON.parse(await readFile(this.opts.file, 'utf8')) as { acks?: [number, number][] };
      for (const [id, at] of data.acks ?? []) if (Number.isSafeInteger(id) && typeof at === 'number') this.acks.set(id, at);
    } catch {
      // First start, or a file cut short: nothing acknowledged.
    }
  }

  /**
   * Refills the list from the newest part of the log (after a restart), with the units the newest
   * readings of their topics name (only payloads that mention a unit are parsed).
   */
  async seed(log: ScannableLog, sinceMs = 24 * 3600_000): Promise<void> {
    const found: { id: number; ts: number; kind: string; p: Record<string, unknown> }[] = [];
    const units = new Map<string, string>();
    await scanNewest(log, Date.now() - sinceMs, (e: StoredEvent) => {
      if (e.kind === 'reading') {
        if (e.json.includes('"unit"')) {
          try {
            const unit = unitOf((JSON.parse(e.json) as { payload?: unknown }).payload);
            if (unit) units.set(e.topic, unit);
          } catch {
            // not JSON: no unit
          }
        }
        return;
      }
      const p = alarmPayloadFor(e);
      if (p) found.push({ id: e.seq, ts: e.ts, kind: e.kind, p });
    });
    found.sort((a, b) => b.id - a.id);
    const known = new Set(this.alarms.map((a) => a.id));
    for (const f of found.slice(0, this.max)) {
      if (known.has(f.id)) continue;
      this.alarms.push(this.entry(f.id, f.ts, f.kind, f.p, units.get(String(f.p.topic ?? f.p.sourceTopic ?? ''))));
    }
    this.alarms.sort((a, b) => b.id - a.id);
    this.alarms.length = Math.min(this.alarms.length, this.max);
  }

  /** A derived batch the log stored from `firstSeq` on (in order); keeps its anomalies and alarms. */
  observe(events: readonly DerivedLike[], firstSeq: number, now = Date.now()): void {
    events.forEach((e, i) => {
      if (e.kind !== 'anomaly' && e.kind !== 'alarm') return;
      if (e.payload === null || typeof e.payload !== 'object') return;
      this.alarms.unshift(this.entry(firstSeq + i, e.ts ?? now, e.kind, e.payload as Record<string, unknown>));
    });
    if (this.alarms.length > this.max) this.alarms.length = this.max;
  }

  private entry(id: number, ts: number, kind: string, p: Record<string, unknown>, knownUnit?: string): Alarm {
    const topic = String(p.topic ?? p.sourceTopic ?? '');
    const unit = (typeof p.unit === 'string' ? p.unit : (knownUnit ?? this.opts.unitOf?.(topic))) ?? null;
    return {
      id,
      ts,
      readingTs: typeof p.sourceTs === 'number' ? p.sourceTs : null,
      kind: kind === 'alarm' ? 'alarm' : 'anomaly',
      rule: typeof p.rule === 'string' ? p.rule : '',
      detector: typeof p.detector === 'string' ? p.detector : null,
      severity: typeof p.severity === 'string' ? p.severity : 'warning',
      topic,
      value: typeof p.value === 'number' ? p.value : null,
      unit,
      text: describe(p, kind, unit),
      detail: typeof p.reason === 'string' ? p.reason : null,
      acked: null,
    };
  }

  /** The newest `limit` alarms, newest first, with their acknowledgement. */
  list(limit = 50): { alarms: Alarm[]; unacknowledged: number } {
    const withAck = (a: Alarm): Alarm => {
      const at = this.acks.get(a.id);
      return at === undefined ? a : { ...a, acked: { at } };
    };
    const unacknowledged = this.alarms.reduce((n, a) => n + (this.acks.has(a.id) ? 0 : 1), 0);
    return { alarms: this.alarms.slice(0, limit).map(withAck), unacknowledged };
  }

  /** Acknowledges alarms by id (unknown ids are ignored); persisted before this resolves. */
  async ack(ids: readonly number[], now = Date.now()): Promise<number> {
    const held = new Set(this.alarms.map((a) => a.id));
    let n = 0;
    for (const id of ids) {
      if (!held.has(id) || this.acks.has(id)) continue;
      this.acks.set(id, now);
      n++;
    }
    const maxAcks = this.opts.maxAcks ?? 1000;
    if (this.acks.size > maxAcks) {
      const oldest = [...this.acks.keys()].sort((a, b) => a - b).slice(0, this.acks.size - maxAcks);
      for (const id of oldest) this.acks.delete(id);
    }
    if (n > 0) await this.persist();
    return n;
  }

  private persist(): Promise<void> {
    const file = this.opts.file;
    if (!file) return Promise.resolve();
    // One write at a time, each with the state at its turn.
    this.writing = this.writing.catch(() => {}).then(() => writeFileAtomic(file, JSON.stringify({ acks: [...this.acks] })));
    return this.writing;
  }
}
