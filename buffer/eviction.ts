/**
 * Eviction planning (buffer/SPEC.md "Capacity, retention, disk"): which of the oldest chunks a
 * commit deletes, for retention and for capacity. The planner only reads: it returns the plan, the
 * commit writes it in its batch, and the index forgets the chunks once that batch is durable.
 *
 * `OldestIndex` holds the index entries of each lane's oldest chunks (refilled from disk in small
 * batches), so planning never walks the chunks or the whole index.
 */
import { decodeIndex, type IndexEntry, indexEnd, indexKey, LANE_NORMAL, LANE_PRIORITY, LANES, type Lane } from './keys.js';
import type { Eviction } from './meta.js';
import type { Store } from './store.js';

/** Index entries of the oldest chunks held in memory per lane (refilled from disk). */
const OLDEST_BATCH = 512;

/** The oldest chunks of a lane, in order, as far as loaded. */
class OldestQueue {
  entries: IndexEntry[] = [];
  /** True when `entries` holds every chunk of the lane (new chunks are then appended in memory). */
  complete = false;
}

export class OldestIndex {
  private lanes: [OldestQueue, OldestQueue] = [new OldestQueue(), new OldestQueue()];

  constructor(private readonly store: Store) {}

  /** Forgets what is held and loads the front of each lane again (after open or a reopen). */
  async reload(): Promise<void> {
    this.lanes = [new OldestQueue(), new OldestQueue()];
    for (const lane of LANES) await this.refill(lane);
  }

  front(lane: Lane): IndexEntry | undefined {
    return this.lanes[lane].entries[0];
  }

  /** The i-th oldest chunk of a lane, loading more of the index when needed. */
  async at(lane: Lane, i: number): Promise<IndexEntry | undefined> {
    const q = this.lanes[lane];
    if (i >= q.entries.length && !q.complete) await this.refill(lane);
    return q.entries[i];
  }

  /** A chunk was committed. */
  added(entry: IndexEntry): void {
    const q = this.lanes[entry.lane];
    if (!q.complete) return;
    q.entries.push(entry);
    // Bound memory: past a few thousand entries the tail stays on disk and is reloaded when needed.
    if (q.entries.length > OLDEST_BATCH * 4) {
      q.entries.length = OLDEST_BATCH * 2;
      q.complete = false;
    }
  }

  /** A chunk left the log (its deletion is durable). */
  removed(e: IndexEntry): void {
    const q = this.lanes[e.lane];
    const i = q.entries.findIndex((x) => x.lastSeq === e.lastSeq);
    if (i >= 0) q.entries.splice(i, 1);
  }

  /** Loads more of a lane's index after what is held, when what is held ran out. */
  async topUp(): Promise<void> {
    for (const lane of LANES) {
      const q = this.lanes[lane];
      if (q.entries.length === 0 && !q.complete) await this.refill(lane);
    }
  }

  private async refill(lane: Lane): Promise<void> {
    const q = this.lanes[lane];
    const last = q.entries[q.entries.length - 1];
    const opts = last
      ? { gt: indexKey(lane, last.lastSeq), lt: indexEnd(lane), limit: OLDEST_BATCH }
      : { gte: indexKey(lane, 0), lt: indexEnd(lane), limit: OLDEST_BATCH };
    const got = await this.store.db.iterator(opts).all();
    for (const [k, v] of got) {
      const e = decodeIndex(k, v);
      if (e) q.entries.push(e);
    }
    if (got.length < OLDEST_BATCH) q.complete = true;
    if (q.entries.length > OLDEST_BATCH * 4) {
      q.entries.length = OLDEST_BATCH * 2;
      q.complete = false;
    }
  }
}

/** What planning needs to know about the log now. */
export interface EvictionInput {
  /** Bytes held, with the chunks of this commit. */
  bytes: number;
  /** Bytes the log may hold now (maxBytes, or less when the disk limits it). */
  capacity: number;
  maxBytes: number;
  /** The disk's limit on the log (infinite when the disk does not limit it). */
  diskLimit: number;
  onFull: 'drop-oldest' | 'reject';
  /** Room a refused append asked for (reject): that much delivered data is released. */
  roomWanted: number;
  /** Retention horizon (events whose newest ts is older go), or null when retention is not checked now. */
  horizon: number | null;
  /** With reject: whether every reader acknowledged the chunk. */
  delivered: (e: IndexEntry) => boolean;
}

/** Chooses chunks to evict: retention first, then capacity (normal lane before the priority lane). */
export async function planEvictions(index: OldestIndex, input: EvictionInput): Promise<{ plan: Eviction[]; over: number }> {
  const plan: Eviction[] = [];
  const taken = [0, 0];
  if (input.horizon !== null) {
    for (const lane of LANES) {
      for (;;) {
        const e = await index.at(lane, taken[lane]);
        if (!e || e.maxTs >= input.horizon) break;
        plan.push({ ...e, reason: 'retention' });
        taken[lane]++;
      }
    }
  }
  let bytes = input.bytes;
  for (const e of plan) bytes -= e.bytes;
  const reject = input.onFull === 'reject';
  // With reject, delivered chunks are released early (down to 90%), so producers refused while
  // the log was full are accepted again as soon as the uplinks catch up.
  const cap = reject ? Math.min(input.capacity * 0.9, input.capacity - input.roomWanted) : input.capacity;
  if (bytes <= cap) return { plan, over: 0 };
  for (const lane of [LANE_NORMAL, LANE_PRIORITY] as const) {
    while (bytes > cap) {
      const e = await index.at(lane, taken[lane]);
      if (!e) break;
      // With onFull: reject, only chunks every reader has acknowledged may go (no loss).
      if (reject && !input.delivered(e)) break;
      const reason = input.diskLimit < input.maxBytes && bytes - e.bytes < input.maxBytes ? 'disk' : 'capacity';
      plan.push({ ...e, reason });
      taken[lane]++;
      bytes -= e.bytes;
    }
  }
  return { plan, over: reject || bytes <= cap ? 0 : bytes - cap };
}
