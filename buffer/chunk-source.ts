/**
 * The chunk source for readers: finds the durable chunk after a position (the recent ring first,
 * then the database through a small cache of decoded chunks) and turns it into what readers hand
 * out (wire.ts builds the envelopes, with the clock corrections this source holds). A chunk is
 * turned into envelopes once and shared by every reader (each uplink reads the same chunks).
 * A damaged chunk is reported to the caller (`corrupt`), who plans its quarantine.
 */
import type { Logger } from 'pino';
import type { StoredEvent } from '../src/core/event.js';
import { ChunkCorruptError, decodeChunk } from './chunk.js';
import { chunkEnd, chunkKey, decodeIndex, indexEnd, indexKey, LANES, type Lane, seqOfKey } from './keys.js';
import { RecentChunks } from './recent-chunks.js';
import type { Store } from './store.js';
import { type ClockFixes, type WireChunk, wireChunk } from './wire.js';

export interface ChunkRead {
  chunk: WireChunk | null;
  /** Set when the chunk is damaged: its last seq (readers move past it) and event count. */
  corrupt?: { lastSeq: number; count: number };
}

/** Recent chunks kept encoded for readers at the head of the log; every commit is built in this ring. */
const RECENT_BYTES = 4 * 1024 * 1024;
/** Older chunks kept as envelopes for readers working through a backlog. */
const DISK_CACHE_CHUNKS = 8;

export class ChunkSource {
  readonly recent = new RecentChunks(RECENT_BYTES);
  private readonly cache = new Map<string, WireChunk>();
  private fixes: ClockFixes = {};

  constructor(
    private readonly store: Store,
    private readonly logger: Logger,
  ) {}

  /** New clock corrections: chunks already turned into envelopes are built again with them. */
  setClockFixes(fixes: ClockFixes): void {
    const before = this.fixes;
    this.fixes = { ...fixes };
    if (Object.keys(fixes).every((k) => before[k] === fixes[k]) && Object.keys(before).length === Object.keys(fixes).length) return;
    this.cache.clear();
    for (const lane of LANES) for (const rc of this.recent.of(lane)) rc.served = null;
  }

  /** A chunk left the log (evicted or quarantined). */
  forget(lane: Lane, lastSeq: number): void {
    this.recent.forget(lane, lastSeq);
    this.cache.delete(`${lane}:${lastSeq}`);
  }

  clear(): void {
    this.recent.clear();
    this.cache.clear();
  }

  /** The first durable chunk of `lane` holding an event with seq > p, or null when there is none. */
  async after(lane: Lane, p: number): Promise<ChunkRead | null> {
    const recent = this.recent.of(lane);
    if (recent.length > 0 && p + 1 >= recent[0].firstSeq) {
      const at = firstAfter(recent, p, (c) => c.lastSeq);
      if (at >= recent.length) return null;
      const rc = recent[at];
      // Written by this process moments ago and checked by its CRC on the way: decode once, share.
      rc.served ??= wireChunk(decodeChunk(rc.buf), this.fixes);
      return { chunk: rc.served };
    }
    if (!this.store.isOpen) return null;
    const db = this.store.db;
    let k: Buffer;
    let v: Buffer | undefined;
    try {
      const got = await db.iterator({ gte: chunkKey(lane, p + 1), lt: chunkEnd(lane), limit: 1 }).all();
      if (got.length === 0) return null;
      [k, v] = got[0];
    } catch (err) {
      // LevelDB itself could not read past p (a damaged block): find the next chunk through the
      // index, which lives in other blocks, and read that chunk alone.
      const next = await db
        .iterator({ gte: indexKey(lane, p + 1), lt: indexEnd(lane), limit: 1 })
        .all()
        .catch(() => []);
      if (next.length === 0) {
        this.logger.error({ lane, after: p, err: (err as Error).message }, 'ring log unreadable after this seq; skipping the rest of the lane');
        return null;
      }
      k = chunkKey(lane, seqOfKey(next[0][0]));
      v = await db.get(k).catch(() => undefined);
    }
    const lastSeq = seqOfKey(k);
    const cacheKey = `${lane}:${lastSeq}`;
    const cached = this.cache.get(cacheKey);
    if (cached) return { chunk: cached };
    try {
      if (!v) throw new ChunkCorruptError('unreadable');
      const decoded = decodeChunk(v);
      if (decoded.lastSeq !== lastSeq) throw new ChunkCorruptError(`holds seqs up to ${decoded.lastSeq}, its key says ${lastSeq}`);
      const chunk = wireChunk(decoded, this.fixes);
      this.cache.set(cacheKey, chunk);
      if (this.cache.size > DISK_CACHE_CHUNKS) this.cache.delete(this.cache.keys().next().value as string);
      return { chunk };
    } catch (err) {
      if (!(err instanceof ChunkCorruptError)) throw err;
      const idx = await db.get(indexKey(lane, lastSeq)).catch(() => undefined);
      const entry = idx ? decodeIndex(indexKey(lane, lastSeq), idx) : null;
      this.logger.error({ lane, lastSeq, err: err.message }, 'damaged chunk found: skipped and quarantined');
      return { chunk: null, corrupt: { lastSeq, count: entry?.count ?? 0 } };
    }
  }

  /** Every event with fromSeq <= seq <= toSeq, both lanes merged in seq order (export). */
  async *scan(fromSeq = 0, toSeq = Number.MAX_SAFE_INTEGER): AsyncGenerator<StoredEvent> {
    const pos = [fromSeq - 1, fromSeq - 1];
    const buf: [StoredEvent[], StoredEvent[]] = [[], []];
    const done = [false, false];
    const fill = async (lane: Lane) => {
      while (buf[lane].length === 0 && !done[lane]) {
        const read = await this.after(lane, pos[lane]);
        if (!read) {
          done[lane] = true;
          return;
        }
        if (read.corrupt) {
          pos[lane] = read.corrupt.lastSeq;
          continue;
        }
        const c = read.chunk!;
        for (const e of c.events) if (e.seq > pos[lane] && e.seq <= toSeq) buf[lane].push(e);
        pos[lane] = c.lastSeq;
        if (c.lastSeq >= toSeq) done[lane] = true;
      }
    };
    for (;;) {
      await fill(0);
      await fill(1);
      const a = buf[0][0];
      const b = buf[1][0];
      if (!a && !b) return;
      if (a && (!b || a.seq < b.seq)) yield buf[0].shift()!;
      else yield buf[1].shift()!;
    }
  }

  /** The last `n` events (both lanes), oldest first. */
  async tail(n: number): Promise<StoredEvent[]> {
    const out: StoredEvent[] = [];
    for (const lane of LANES) {
      let got = 0;
      for await (const [, v] of this.store.db.iterator({ gte: chunkKey(lane, 0), lt: chunkEnd(lane), reverse: true })) {
        let c: WireChunk;
        try {
          c = wireChunk(decodeChunk(v), this.fixes);
        } catch {
          continue;
        }
        for (let i = c.events.length - 1; i >= 0 && got < n; i--, got++) out.push(c.events[i]);
        if (got >= n) break;
      }
    }
    return out.sort((x, y) => x.seq - y.seq).slice(-n);
  }
}

/** Index of the first item whose seq (`seqOf`) is after p, in items sorted by it (binary search). */
export function firstAfter<T>(items: readonly T[], p: number, seqOf: (item: T) => number): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (seqOf(items[mid]) <= p) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
