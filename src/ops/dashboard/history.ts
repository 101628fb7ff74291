/**
 * Bounded reads of the newest part of the ring log, for the dashboard's history (a reload or a new
 * viewer sees the last hour, not an empty chart) and for the alarm list after a restart.
 *
 * The log is read backwards in windows of `windowEvents` seqs (each window forwards, oldest first),
 * newest window first, and stops at whichever comes first: an event older than `since`, the start
 * of the log, `maxScanEvents` events looked at, or `maxScanMs` spent. So a busy log answers with
 * its newest stretch and says how far back it got (`from`, `complete`); nothing loads the backlog,
 * and what is kept is at most `maxPoints` points (thinned evenly when there are more).
 */
import type { StoredEvent } from '../../event.js';
import { numericValue, unitOf } from './readings.js';

/** What this needs of the ring log: its seq range and an ordered scan of a seq range. */
export interface ScannableLog {
  stats(): { firstSeq: number; lastSeq: number };
  scan(fromSeq: number, toSeq: number): AsyncIterable<StoredEvent>;
}

export interface ScanLimits {
  windowEvents: number;
  maxScanEvents: number;
  maxScanMs: number;
}

export const DEFAULT_SCAN_LIMITS: ScanLimits = { windowEvents: 20_000, maxScanEvents: 300_000, maxScanMs: 500 };

export interface ScanResult {
  /** Events looked at. */
  scanned: number;
  /** The oldest `ts` looked at (null when nothing was). */
  reached: number | null;
  /** True when the scan got back to `since` or to the start of the log. */
  complete: boolean;
}

/**
 * Calls `visit` for every event newer than `since`, newest window first (forwards inside a window).
 * `visit` returns false to stop early.
 */
export async function scanNewest(
  log: ScannableLog,
  since: number,
  visit: (e: StoredEvent, window: number) => boolean | void,
  limits: ScanLimits = DEFAULT_SCAN_LIMITS,
): Promise<ScanResult> {
  const { firstSeq, lastSeq } = log.stats();
  const deadline = Date.now() + limits.maxScanMs;
  let to = lastSeq;
  let scanned = 0;
  let reached: number | null = null;
  let window = 0;
  while (to >= Math.max(1, firstSeq)) {
    const from = Math.max(firstSeq, to - limits.windowEvents + 1, 1);
    let olderThanSince = false;
    for await (const e of log.scan(from, to)) {
      scanned++;
      if (reached === null || e.ts < reached) reached = e.ts;
      if (e.ts < since) {
        olderThanSince = true;
        continue;
      }
      if (visit(e, window) === false) return { scanned, reached, complete: true };
      if ((scanned & 1023) === 0 && (scanned >= limits.maxScanEvents || Date.now() > deadline)) {
        return { scanned, reached, complete: false };
      }
    }
    if (olderThanSince || from <= firstSeq) return { scanned, reached, complete: true };
    if (scanned >= limits.maxScanEvents || Date.now() > deadline) return { scanned, reached, complete: false };
    to = from - 1;
    window++;
  }
  return { scanned, reached, complete: true };
}

export type Point = [ts: number, value: number];

export interface Marker {
  /** The anomaly or alarm event's seq (an alarm's id in /api/alarms). */
  id: number;
  /** When the reading that raised it was taken (the event's own ts when unknown). */
  ts: number;
  value: number | null;
  kind: string;
  rule: string;
  severity: string;
}

export interface History extends ScanResult {
  topic: string;
  since: number;
  unit: string | null;
  points: Point[];
  markers: Marker[];
  /** Points were thinned to `max` (every k-th kept). */
  thinned: boolean;
}

const MAX_MARKERS = 200;

/** A parsed anomaly or alarm event's payload, when it is about `topic`. */
export function alarmPayloadFor(e: StoredEvent, topic?: string): Record<string, unknown> | undefined {
  // `alarm` is the rules engine's kind (not every build has it, so compared as a string).
  const kind: string = e.kind;
  if (kind !== 'anomaly' && kind !== 'alarm') return undefined;
  let payload: unknown;
  try {
    payload = (JSON.parse(e.json) as { payload?: unknown }).payload;
  } catch {
    return undefined;
  }
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) return undefined;
  const p = payload as Record<string, unknown>;
  if (topic !== undefined && p.topic !== topic && p.sourceTopic !== topic) return undefined;
  return p;
}

/** The readings of `topic` since `since`, at most `max` points, and the anomalies/alarms on it. */
export async function readHistory(
  log: ScannableLog,
  query: { topic: string; since: number; max: number },
  limits: ScanLimits = DEFAULT_SCAN_LIMITS,
): Promise<History> {
  const { topic, since, max } = query;
  // Windows come newest first; each window's points are in order. Joined in reverse at the end.
  const windows: Point[][] = [];
  const markers: Marker[] = [];
  let kept = 0;
  let stride = 1;
  let seen = 0;
  let unit: string | null = null;
  const result = await scanNewest(
    log,
    since,
    (e, w) => {
      if (e.topic === topic && e.kind === 'reading') {
        seen++;
        if (seen % stride !== 0) return;
        let payload: unknown;
        try {
          payload = (JSON.parse(e.json) as { payload?: unknown }).payload;
        } catch {
          return;
        }
        const value = numericValue(payload);
        if (value === undefined) return;
        unit ??= unitOf(payload) ?? null;
        (windows[w] ??= []).push([e.ts, value]);
        if (++kept >= 2 * max) {
          // Too many points: keep every other one from here on and thin what is held.
          stride *= 2;
          kept = 0;
          for (let i = 0; i < windows.length; i++) {
            windows[i] = (windows[i] ?? []).filter((_, j) => j % 2 === 1);
            kept += windows[i].length;
          }
        }
        return;
      }
      if (markers.length >= MAX_MARKERS) return;
      const p = alarmPayloadFor(e, topic);
      if (!p) return;
      markers.push({
        id: e.seq,
        ts: typeof p.sourceTs === 'number' ? p.sourceTs : e.ts,
        value: typeof p.value === 'number' ? p.value : null,
        kind: e.kind,
        rule: typeof p.rule === 'string' ? p.rule : '',
        severity: typeof p.severity === 'string' ? p.severity : 'warning',
      });
    },
    limits,
  );
  let points: Point[] = [];
  for (let i = windows.length - 1; i >= 0; i--) if (windows[i]) points = points.concat(windows[i]);
  const thinned = stride > 1 || points.length > max;
  if (points.length > max) {
    const k = points.length / max;
    points = Array.from({ length: max }, (_, i) => points[Math.min(points.length - 1, Math.floor((i + 1) * k) - 1)]);
  }
  markers.sort((a, b) => a.ts - b.ts);
  return { topic, since, unit, points, markers, thinned, ...result };
}

/**
 * The log as a ScannableLog when it offers `scan` (the ring log does; `RingLog`, its contract,
 * does not list it yet), else undefined.
 */
export function asScannable(log: unknown): ScannableLog | undefined {
  const l = log as Partial<ScannableLog> | undefined;
  return l && typeof l.scan === 'function' && typeof l.stats === 'function' ? (l as ScannableLog) : undefined;
}
