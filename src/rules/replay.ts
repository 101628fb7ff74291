/**
 * Replaying recorded events through a config's rules and uplink routes, offline (`sluice rules
 * test`): what would be dropped, derived, alarmed and sent where. Time is the events' own (event
 * time drives the clock, so a heartbeat missing in the recording raises its alarm in the replay).
 *
 * Input, one event per line, streamed (the file is never held whole):
 * - NDJSON: an event as `sluice buffer export` writes it, or just `{"topic": ..., "payload": ...}`
 *   (`ts` defaults to the previous event's, `kind` to `reading`);
 * - CSV with a header: `topic` (required), `ts` or `timestamp` (epoch ms or ISO 8601), `kind`,
 *   `payload` (JSON text); any other column is a payload field (numbers and true/false typed).
 */
import { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import type { EventInput } from '../core/event.js';
import { silentLogger } from '../core/log.js';
import { compileFilter } from '../../uplink/filter.js';
import { RulesEngine } from './engine.js';
import { wherePredicate } from './route.js';

export type ReplayLine =
  | { type: 'dropped'; line: number; topic: string; rules: string[] }
  | { type: 'emitted'; line: number; event: EventInput }
  | { type: 'bad'; line: number; error: string };

export interface ReplaySummary {
  events: number;
  bad: number;
  dropped: number;
  derived: number;
  alarms: number;
  /** Events each uplink would forward (its filter and `where:`), of those stored. */
  routed: Record<string, number>;
  /** Absences still waiting at the end of the input (they fire if the silence goes on). */
  armedAbsences: number;
}

export class Replay {
  private readonly engine: RulesEngine;
  private readonly routes: { name: string; keep?: (kind: never, topic: string, json: string) => boolean }[];
  private seq = 0;
  private lastTs = 0;
  readonly summary: ReplaySummary;

  constructor(config: Config) {
    const registry = new Registry();
    this.engine = new RulesEngine(config.rules, { logger: silentLogger, registry, tickMs: 0, now: () => this.lastTs });
    this.routes = config.uplinks.map((u) => ({
      name: u.name,
      keep: compileFilter(u.filter, u.where ? wherePredicate(u.where, u.name, registry) : undefined) as never,
    }));
    this.summary = { events: 0, bad: 0, dropped: 0, derived: 0, alarms: 0, routed: Object.fromEntries(this.routes.map((r) => [r.name, 0])), armedAbsences: 0 };
  }

  /** One input event; returns what the rules made of it (and of the time that passed before it). */
  offer(e: EventInput, line: number): ReplayLine[] {
    const out: ReplayLine[] = [];
    this.summary.events++;
    const ts = e.ts ?? this.lastTs;
    // Time passes first: absences that fell due before this event fire before it counts.
    if (ts > this.lastTs) {
      this.lastTs = ts;
      for (const a of this.engine.tick(ts, ts)) out.push(this.emitted(a, line));
    }
    const event: EventInput = { ...e, ts, kind: e.kind ?? 'reading' };
    if (this.engine.dropping && this.engine.keep([event]).length === 0) {
      this.summary.dropped++;
      const after = this.engine.status();
      const rules = after.filter((r) => r.kind === 'drop' && r.matches > (this.dropSeen.get(r.name) ?? 0)).map((r) => r.name);
      for (const r of after) if (r.kind === 'drop') this.dropSeen.set(r.name, r.matches);
      out.push({ type: 'dropped', line, topic: e.topic, rules });
      return out;
    }
    const seq = ++this.seq;
    this.route(event, seq);
    for (const d of this.engine.observe([{ seq, ts, topic: e.topic, source: e.source, payload: e.payload, kind: event.kind as string, deviceTs: e.deviceTs }], ts)) {
      out.push(this.emitted(d, line));
      this.route(d, ++this.seq);
    }
    return out;
  }

  /** The end of the input. */
  finish(): ReplaySummary {
    this.summary.armedAbsences = this.engine.rules.reduce((n, r) => n + (r.absence?.pending() ?? 0), 0);
    return this.summary;
  }

  private readonly dropSeen = new Map<string, number>();

  private emitted(e: EventInput, line: number): ReplayLine {
    if (e.kind === 'alarm') this.summary.alarms++;
    else this.summary.derived++;
    return { type: 'emitted', line, event: e };
  }

  private route(e: EventInput, seq: number): void {
    const json = JSON.stringify({ seq, ts: e.ts, source: e.source, topic: e.topic, payload: e.payload, kind: e.kind ?? 'reading', deviceTs: e.deviceTs });
    for (const r of this.routes) if (!r.keep || r.keep((e.kind ?? 'reading') as never, e.topic, json)) this.summary.routed[r.name]++;
  }
}

/** Parses input lines into events, one at a time. */
export async function* readEvents(
  lines: AsyncIterable<string> | Iterable<string>,
  format: 'ndjson' | 'csv',
): AsyncGenerator<{ line: number; event?: EventInput; error?: string }> {
  let n = 0;
  let header: string[] | undefined;
  for await (const raw of lines) {
    n++;
    if (!raw.trim()) continue;
    if (format === 'ndjson') {
      try {
        yield { line: n, event: toEvent(JSON.parse(raw)) };
      } catch (err) {
        yield { line: n, error: (err as Error).message };
      }
      continue;
    }
    if (!header) {
      header = splitCsv(raw).map((h) => h.trim());
      if (!header.includes('topic')) {
        yield { line: n, error: 'the CSV header has no "topic" column' };
        return;
      }
      continue;
    }
    const cells = splitCsv(raw);
    const row: Record<string, unknown> = {};
    const fields: Record<string, unknown> = {};
    header.forEach((h, j) => {
      const c = cells[j] ?? '';
      if (['topic', 'ts', 'timestamp', 'kind', 'payload', 'source'].includes(h)) row[h] = c;
      else if (c !== '') fields[h] = typed(c);
    });
    try {
      row.payload = row.payload !== undefined && row.payload !== '' ? JSON.parse(row.payload as string) : fields;
      row.ts = row.ts || row.timestamp;
      yield { line: n, event: toEvent(row) };
    } catch (err) {
      yield { line: n, error: (err as Error).message };
    }
  }
}

function toEvent(o: Record<string, unknown>): EventInput {
  if (typeof o?.topic !== 'string' || o.topic === '') throw new Error('the event has no topic');
  const ts = timeOf(o.ts);
  return {
    source: typeof o.source === 'string' ? o.source : 'replay',
    topic: o.topic,
    payload: o.payload ?? null,
    kind: (typeof o.kind === 'string' && o.kind ? o.kind : 'reading') as EventInput['kind'],
    ts,
    deviceTs: typeof o.deviceTs === 'number' ? o.deviceTs : undefined,
  };
}

function timeOf(v: unknown): number | undefined {
  if (v === undefined || v === '' || v === null) return undefined;
  const n = Number(v);
  if (Number.isFinite(n)) return n;
  const d = Date.parse(String(v));
  if (Number.isNaN(d)) throw new Error(`"${String(v)}" is not a time (epoch ms or ISO 8601)`);
  return d;
}

function typed(c: string): unknown {
  if (c === 'true' || c === 'false') return c === 'true';
  const n = Number(c);
  return c.trim() !== '' && Number.isFinite(n) ? n : c;
}

/** One CSV line (RFC 4180 quotes: `"a,b"`, `""` for a quote). */
function splitCsv(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}
