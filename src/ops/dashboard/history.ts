/**
 * Bounded reads of the newest part of the ring log, for the dashboard's history (a reload or a new
 * viewer sees the last hour, not an empty chart) and for the alarm list after a restart.
 *
 * The log is read backwards in windows of seqs (each window forwards, oldest first), newest window
 * first, windows doubling from `windowEvents` (so a tight budget still gets the newest), and stops at whichever comes first: an event older than `since`, the start
 * of the log, `maxScanEvents` events looked at, or `maxScanMs` spent. So a busy log answers with
 * its newest stretch and says how far back it got (`from`, `complete`); nothing loads the backlog,
 * and what is kept is at most `max` points (one per time bucket when there are more).
 */
import type { StoredEvent } from '../../core/event.js';
import { numericValue, unitOf } from './readings.js';

/** What this needs of the ring log: its seq range and an ordered scan of a seq range. */
export interface ScannableLog {
  stats(): { firstSeq: number; lastSeq: number };
  scan(fromSeq: number, toSeq: number): AsyncIterable<StoredEvent>;
}

export interface ScanLimits {
  /** Seqs in the first (newest) window; each next window is twice as large, up to `maxWindowEvents`. */
  windowEvents: number;
  maxWindowEvents: number;
  maxScanEvents: number;
  maxScanMs: number;
}

export const DEFAULT_SCAN_LIMITS: ScanLimits = { windowEvents: 2_000, maxWindowEvents: 32_000, maxScanEvents: 300_000, maxScanMs: 500 };

export interface ScanResult {
  /** Events looked at. */
  scanned: number;
  /** The oldest `ts` of the stretch read completely (null when nothing was). */
  reached: number | null;
  /** True when the scan got back to `since` or to the start of the log. */
  complete: boolean;
}

/**
 * Calls `visit` for every event newer than `since`, newest window first (forwards inside a window;
 * windows grow, so a tight budget still reads the newest events). `visit` returns false to stop.
 * When the budget runs out inside a window, that window is abandoned: `abandon(window)` is called
 * so the caller can drop what it kept of it (it would leave a gap before the newer windows).
 */
export async function scanNewest(
  log: ScannableLog,
  since: number,
  visit: (e: StoredEvent, window: number) => boolean | void,
  limits: ScanLimits = DEFAULT_SCAN_LIMITS,
  abandon: (window: number) => void = () => {},
): Promise<ScanResult> {
  const { firstSeq, lastSeq } = log.stats();
  const deadline = Date.now() + limits.maxScanMs;
  const spent = () => scanned >= limits.maxScanEvents || Date.now() > deadline;
  let to = lastSeq;
  let size = limits.windowEvents;
  let scanned = 0;
  let reached: number | null = null;
  let window = 0;
  while (to >= Math.max(1, firstSeq)) {
    const from = Math.max(firstSeq, to - size + 1, 1);
    let olderThanSince = false;
    let oldest: number | null = null;
    for await (const e of log.scan(from, to)) {
      scanned++;
      if (oldest === null || e.ts < oldest) oldest = e.ts;
      if (e.ts < since) {
        olderThanSince = true;
        continue;
      }
      if (visit(e, window) === false) return { scanned, reached: oldest, complete: true };
      if ((scanned & 1023) === 0 && spent()) {
        abandon(window);
        return { scanned, reached, complete: false };
      }
    }
    if (oldest !== null) reached = oldest;
    if (olderThanSince || from <= firstSeq) return { scanned, reached, complete: true };
    if (spent()) return { scanned, reached, complete: false };
    to = from - 1;
    size = Math.min(size * 2, limits.maxWindowEvents);
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
  /** There were more readings than `max`: the newest of each of `max` time buckets is kept. */
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

/**
 * The readings of `topic` since `since`, at most `max` points, and the anomalies/alarms on it. With
 * more readings than `max`, the time range is cut into equal buckets (as fine as `max` allows) and
 * the newest reading of each is kept: evenly spread, the newest reading always in, memory bounded by
 * `max` whatever the scan finds.
 */
export async function readHistory(
  log: ScannableLog,
  query: { topic: string; since: number; max: number; now?: number },
  limits: ScanLimits = DEFAULT_SCAN_LIMITS,
): Promise<History> {
  const { topic, since, max } = query;
  // Buckets start fine (every reading its own) and double in width whenever there are more than `max`.
  let bucketMs = Math.max(1, ((query.now ?? Date.now()) - since) / (max * 1024));
  let buckets = new Map<number, { point: Point; window: number }>();
  const coarsen = () => {
    while (buckets.size > max) {
      bucketMs *= 2;
      const next = new Map<number, { point: Point; window: number }>();
      for (const held of buckets.values()) {
        const b = Math.floor((held.point[0] - since) / bucketMs);
        const other = next.get(b);
        if (!other || other.point[0] < held.point[0]) next.set(b, held);
      }
      buckets = next;
      thinned = true;
    }
  };
  const markers: Marker[] = [];
  const markerWindow: number[] = [];
  let thinned = false;
  let unit: string | null = null;
  const result = await scanNewest(
    log,
    since,
    (e, w) => {
      if (e.topic === topic && e.kind === 'reading') {
        const b = Math.floor((e.ts - since) / bucketMs);
        const held = buckets.get(b);
        if (held && held.point[0] > e.ts) {
          thinned = true;
          return;
        }
        let payload: unknown;
        try {
          payload = (JSON.parse(e.json) as { payload?: unknown }).payload;
        } catch {
          return;
        }
        const value = numericValue(payload);
        if (value === undefined) return;
        unit ??= unitOf(payload) ?? null;
        if (held) thinned = true;
        buckets.set(b, { point: [e.ts, value], window: w });
        coarsen();
        return;
      }
      if (markers.length >= MAX_MARKERS) return;
      const p = alarmPayloadFor(e, topic);
      if (!p) return;
      markerWindow.push(w);
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
    (w) => {
      for (const [b, held] of buckets) if (held.window >= w) buckets.delete(b);
      for (let i = markers.length - 1; i >= 0 && markerWindow[i] >= w; i--) markers.pop();
    },
  );
  const points = [...buckets.values()].map((b) => b.point).sort((a, b) => a[0] - b[0]);
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
