/**
 * Recently committed chunks, kept encoded for readers at the head of the log, in one fixed ring of
 * bytes that each commit builds its chunks into.
 *
 * Why a ring and not a Buffer per chunk: under full load a commit writes a chunk of 1-2 MB 25 times
 * a second. A fresh Buffer each time is external memory that outlives young-generation collections
 * (it is kept for readers), and V8 answers such growth with full mark-compacts of the heap:
 * several a second under full load (test/bench/README.md has the measurement).
 * So each chunk is built straight into the ring, written from there (the log commits one batch at
 * a time, so the next region is handed out only after this write resolved) and kept there for
 * readers: nothing is allocated per commit.
 *
 * A region is reused once the ring has gone round: the chunks in it are dropped from the list
 * first, so a listed chunk's bytes are always the ones written for it. Readers then read that
 * chunk from the database, as they read any older one.
 */
import { LANES, type Lane } from './keys.js';
import type { WireChunk } from './wire.js';

export interface RecentChunk {
  firstSeq: number;
  lastSeq: number;
  /** The encoded chunk: a view into the ring. */
  buf: Buffer;
  /** Turned into envelopes once, when a reader first asks for it. */
  served: WireChunk | null;
  /** Where `buf` starts in the ring, counted from the ring's first use without ever wrapping. */
  at: number;
}

export class RecentChunks {
  private readonly ring: Buffer;
  private readonly lanes: [RecentChunk[], RecentChunk[]] = [[], []];
  /**
   * Regions go round the ring in order, so positions that never wrap (round × ring size + offset)
   * tell which chunks a new region overwrites without looking at every kept chunk: those starting
   * less than one ring before its end, always the oldest, at the front of their lane.
   */
  private roundStart = 0;
  /** Where the next region starts, in the ring. */
  private next = 0;

  constructor(bytes: number) {
    this.ring = Buffer.allocUnsafe(bytes);
  }

  /**
   * A region of `bytes` to build the next commit's chunks in, and where it starts (for `add`), or
   * null when that much does not fit the ring (the caller allocates). Chunks that were kept in the
   * region are dropped first.
   */
  region(bytes: number): { buf: Buffer; at: number } | null {
    if (bytes > this.ring.length) return null;
    if (this.next + bytes > this.ring.length) {
      this.roundStart += this.ring.length;
      this.next = 0;
    }
    const start = this.next;
    this.next = start + bytes;
    const overwrittenBelow = this.roundStart + this.next - this.ring.length;
    for (const lane of LANES) {
      const list = this.lanes[lane];
      // Also drops what a wrap skipped over: older than an overwritten chunk, so what is kept stays contiguous.
      let drop = 0;
      while (drop < list.length && list[drop].at < overwrittenBelow) drop++;
      if (drop > 0) list.splice(0, drop);
    }
    return { buf: this.ring.subarray(start, this.next), at: this.roundStart + start };
  }

  /**
   * Keeps a committed chunk for readers; `at`: where it sits in the ring (from `region`). One built
   * outside the ring is not kept, and neither is anything before it in its lane: a reader past a
   * lane's kept chunks has read all there is.
   */
  add(lane: Lane, firstSeq: number, lastSeq: number, buf: Buffer, at: number | undefined): void {
    if (at === undefined) {
      this.lanes[lane] = [];
      return;
    }
    this.lanes[lane].push({ firstSeq, lastSeq, buf, served: null, at });
  }

  /** The kept chunks of a lane, oldest first. */
  of(lane: Lane): readonly RecentChunk[] {
    return this.lanes[lane];
  }

  /** Drops a lane's chunks up to and including the one ending at `lastSeq` (evicted or quarantined). */
  forget(lane: Lane, lastSeq: number): void {
    const list = this.lanes[lane];
    // Chunks leave a list from its front only, so what is kept stays contiguous; an evicted chunk
    // is usually older than all of them, so this looks at the front alone.
    let drop = 0;
    while (drop < list.length && list[drop].lastSeq <= lastSeq) drop++;
    if (drop > 0 && list[drop - 1].lastSeq === lastSeq) list.splice(0, drop);
  }

  clear(): void {
    for (const lane of LANES) this.lanes[lane] = [];
  }
}
