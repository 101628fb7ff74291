/**
 * The meta record (key 0xf0, written in every commit): nextSeq, per-lane totals and the counters.
 * `applyCommit` is how a commit's plan changes it; the new record goes into the commit's batch and
 * replaces the live one only once that batch is durable.
 */
import type { IndexEntry, Lane } from './keys.js';

export interface LaneMeta {
  events: number;
  bytes: number;
  /** Seq of the last event ever written to this lane (0 when none). */
  lastSeq: number;
}

export interface Meta {
  v: 1;
  nextSeq: number;
  lanes: [LaneMeta, LaneMeta];
  evicted: number;
  evictedByReason: Record<string, number>;
  quarantined: number;
  refused: number;
  /** Clock corrections (ms) by the boot id of the process that stamped unsynced events. */
  clockFix: Record<string, number>;
}

export function emptyMeta(nextSeq = 1): Meta {
  return {
    v: 1,
    nextSeq,
    lanes: [
      { events: 0, bytes: 0, lastSeq: 0 },
      { events: 0, bytes: 0, lastSeq: 0 },
    ],
    evicted: 0,
    evictedByReason: {},
    quarantined: 0,
    refused: 0,
    clockFix: {},
  };
}

/** A meta record as stored, or null when it does not parse as one. */
export function parseMeta(raw: Buffer): Meta | null {
  try {
    const m = JSON.parse(raw.toString('utf8')) as Meta;
    return m && m.v === 1 ? { ...emptyMeta(), ...m } : null;
  } catch {
    return null;
  }
}

export const metaBytes = (m: Meta) => m.lanes[0].bytes + m.lanes[1].bytes;

export type Eviction = IndexEntry & { reason: string };

/** The meta record after a commit that adds `added` chunks and removes `evicted` and `quarantined` ones. */
export function applyCommit(
  m: Meta,
  added: ReadonlyArray<{ lane: Lane; entry: IndexEntry }>,
  evicted: readonly Eviction[],
  quarantined: readonly IndexEntry[],
): Meta {
  const lanes = m.lanes.map((l) => ({ ...l })) as [LaneMeta, LaneMeta];
  for (const { lane, entry } of added) {
    lanes[lane].events += entry.count;
    lanes[lane].bytes += entry.bytes;
    lanes[lane].lastSeq = entry.lastSeq;
  }
  const byReason = { ...m.evictedByReason };
  let evictedCount = m.evicted;
  for (const e of evicted) {
    lanes[e.lane].events -= e.count;
    lanes[e.lane].bytes -= e.bytes;
    evictedCount += e.count;
    byReason[e.reason] = (byReason[e.reason] ?? 0) + e.count;
  }
  let quarantinedCount = m.quarantined;
  for (const e of quarantined) {
    lanes[e.lane].events -= e.count;
    lanes[e.lane].bytes -= e.bytes;
    quarantinedCount += e.count;
  }
  return { ...m, lanes, evicted: evictedCount, evictedByReason: byReason, quarantined: quarantinedCount, clockFix: { ...m.clockFix } };
}
