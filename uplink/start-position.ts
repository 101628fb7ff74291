/**
 * Where an uplink with no stored cursor starts (`start:` in its config): the gateway places and
 * persists the cursor before it builds the uplink's runner, so nothing is sent before it and a crash
 * right after cannot leave the uplink cursor-less (a `latest` uplink restarted without a cursor
 * would skip what arrived in between).
 *
 * - `oldest`: nothing to do; the reader starts before the first event held.
 * - `latest`: the cursor moves to the last seq stored now.
 * - a duration in ms: events stored before `now - ms` are acknowledged, by reading through them
 *   once (the log has no index by time). Bounded by the log's size, and done once per uplink.
 */
import type { LogReader } from '../buffer/types.js';

export type StartPosition = 'oldest' | 'latest' | number;

/** Events read per step while skipping by time. */
const SCAN_BATCH = 2000;

/** Places the cursor of a new reader; resolves once it is persisted. Returns the events skipped. */
export async function placeCursor(
  reader: LogReader,
  start: StartPosition,
  lastSeq: number,
  now = Date.now(),
): Promise<number> {
  if (start === 'oldest') return 0;
  const before = reader.stats().pendingEvents;
  if (start === 'latest') {
    // Also persists a cursor on an empty log (seq 0): the uplink then has one and start no longer applies.
    await reader.commit(lastSeq);
    return before - reader.stats().pendingEvents;
  }
  const cutoff = now - start;
  const commits: Promise<void>[] = [reader.commit(0)];
  try {
    for (;;) {
      const events = await reader.next(SCAN_BATCH, 16 * 1024 * 1024);
      if (events.length === 0) break;
      // Each hand-out is one lane in seq order; events stored at the cutoff or later end the skip there.
      const keep = events.findIndex((e) => e.ts >= cutoff || e.seq > lastSeq);
      if (keep === -1) commits.push(reader.commit(events[events.length - 1].seq));
      else if (keep > 0) commits.push(reader.commit(events[keep - 1].seq));
      if (events[events.length - 1].seq > lastSeq) break;
    }
  } finally {
    reader.rewind();
  }
  await Promise.all(commits);
  return before - reader.stats().pendingEvents;
}
