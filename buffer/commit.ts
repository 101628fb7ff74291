/**
 * The commit side of the log: appends waiting for their commit (`PendingAppends`) and the one
 * place that assembles a write batch (`assembleBatch`). Nothing here writes: the log takes the
 * pending chunks and the eviction, quarantine and cursor plans, assembles them into ONE batch and
 * writes it (buffer/SPEC.md "Atomicity and recovery").
 */
import { ChunkBuilder, KIND_CODE, UNSYNCED } from './chunk.js';
import type { ClockWatch } from './clock.js';
import type { EventInput } from '../src/core/event.js';
import { chunkKey, encodeIndex, type IndexEntry, indexKey, LANES, type Lane, META_KEY, readerKey } from './keys.js';
import type { Eviction, Meta } from './meta.js';
import type { WriteOp } from './store.js';
import type { AppendResult } from './types.js';

/** A region of the recent ring (RecentChunks.region) and where it starts there. */
export interface Region {
  buf: Buffer;
  at: number;
}

/** Appends waiting for their commit, column-wise: `ok[i]` resolves a promise, `fail[i]` rejects it. */
export interface Waiters {
  ok: Array<(r: AppendResult) => void>;
  fail: Array<(e: Error) => void>;
  first: number[];
  last: number[];
}

const newWaiters = (): Waiters => ({ ok: [], fail: [], first: [], last: [] });

export interface NewChunk {
  lane: Lane;
  value: Buffer;
  entry: IndexEntry;
  /** Where `value` sits in the recent ring (RecentChunks), when it was built there. */
  at?: number;
}

/**
 * Events accepted and encoded, waiting for their commit: one chunk builder per lane (byte arenas,
 * no per-event JS objects) and the promises to settle.
 */
export class PendingAppends {
  private readonly lanes: [ChunkBuilder, ChunkBuilder];
  private waiters = newWaiters();
  count = 0;
  bytes = 0;

  constructor(gatewayId: string) {
    this.lanes = [new ChunkBuilder(gatewayId), new ChunkBuilder(gatewayId)];
  }

  /**
   * Encodes `events` with seqs from `first`; returns the bytes they add and how to take them back
   * (a call refused for room accepts nothing). Throws, having kept nothing, when one cannot be encoded.
   */
  encode(events: EventInput[], first: number, now: number, clock: ClockWatch): { added: number; undo: () => void } {
    const [p0, p1] = this.lanes;
    const m0 = p0.mark();
    const m1 = p1.mark();
    const undo = () => {
      p0.rollback(m0);
      p1.rollback(m1);
    };
    const before = p0.bytes + p1.bytes;
    try {
      for (let i = 0, seq = first; i < events.length; i++, seq++) {
        const e = events[i];
        const ts = e.ts ?? now;
        const kind = e.kind ?? 'reading';
        const code = (KIND_CODE[kind] ?? 0) | (clock.unsynced(ts) ? UNSYNCED : 0);
        (kind === 'anomaly' || kind === 'audit' || kind === 'alarm' ? p1 : p0).add(seq, ts, code, e);
      }
    } catch (err) {
      undo();
      throw err;
    }
    return { added: p0.bytes + p1.bytes - before, undo };
  }

  /** The encoded events are accepted: counted, and settled by the commit that takes them. */
  accept(n: number, added: number): void {
    this.count += n;
    this.bytes += added;
  }

  /** A promise settled when the commit carrying seqs first..last is durable (or failed). */
  wait(first: number, last: number): Promise<AppendResult> {
    const w = this.waiters;
    return new Promise<AppendResult>((resolve, reject) => {
      w.ok.push(resolve);
      w.fail.push(reject);
      w.first.push(first);
      w.last.push(last);
    });
  }

  /**
   * Takes everything waiting: the chunks (built into `region` when it gives one, so nothing is
   * allocated per commit) and their waiters. The builders take new appends at once.
   */
  take(boot: number, region: (bytes: number) => Region | null): { chunks: NewChunk[]; waiters: Waiters; count: number } {
    const chunks: NewChunk[] = [];
    // One region for the whole commit: two asked for apart could overlap, the second wrapping round
    // the ring onto the first before either is written.
    const into = region(this.lanes[0].bytes + this.lanes[1].bytes);
    let offset = 0;
    for (const lane of LANES) {
      const p = this.lanes[lane];
      if (p.count === 0) continue;
      const at = into ? into.at + offset : undefined;
      const target = into?.buf.subarray(offset, (offset += p.bytes));
      // build() copies out of the arenas, so the builder takes new appends while this one is written.
      const value = p.build(boot, target);
      const entry: IndexEntry = {
        lane,
        firstSeq: p.firstSeq,
        lastSeq: p.lastSeq,
        count: p.count,
        bytes: value.length,
        minTs: p.minTs,
        // A chunk stamped by an unsynced clock is not aged by retention (its ts says 1970): capacity still bounds it.
        maxTs: p.unsynced ? Number.MAX_VALUE : p.maxTs,
      };
      p.reset();
      chunks.push({ lane, value, entry, ...(at !== undefined ? { at } : {}) });
    }
    const taken = { chunks, waiters: this.waiters, count: this.count };
    this.waiters = newWaiters();
    this.count = 0;
    this.bytes = 0;
    return taken;
  }
}

export function settle(w: Waiters): void {
  for (let i = 0; i < w.ok.length; i++) w.ok[i]({ firstSeq: w.first[i], lastSeq: w.last[i] });
}

export function fail(w: Waiters, err: Error): void {
  for (const f of w.fail) f(err);
}

/** One commit's content, as planned by the parts of the log. */
export interface CommitPlan {
  chunks: readonly NewChunk[];
  evict: readonly Eviction[];
  quarantine: readonly IndexEntry[];
  meta: Meta;
  /** Reader cursors to write (serialised) and to delete. */
  cursors: ReadonlyArray<{ name: string; value: string }>;
  dropped: readonly string[];
}

/** The one place a write batch is assembled: chunks, index entries, deletions, meta and cursors. */
export function assembleBatch(plan: CommitPlan): { ops: WriteOp[]; bytes: number } {
  const ops: WriteOp[] = [];
  for (const { lane, entry } of plan.chunks) ops.push({ type: 'put', key: indexKey(lane, entry.lastSeq), value: encodeIndex(entry) });
  for (const e of [...plan.evict, ...plan.quarantine]) {
    ops.push({ type: 'del', key: chunkKey(e.lane, e.lastSeq) });
    ops.push({ type: 'del', key: indexKey(e.lane, e.lastSeq) });
  }
  ops.push({ type: 'put', key: META_KEY, value: Buffer.from(JSON.stringify(plan.meta)) });
  for (const name of plan.dropped) ops.push({ type: 'del', key: readerKey(name) });
  for (const { name, value } of plan.cursors) ops.push({ type: 'put', key: readerKey(name), value: Buffer.from(value) });
  // The chunks go last in the batch. LevelDB's batch is one growing string: a chunk appended first
  // makes the next small record reallocate and copy the whole of it again, into fresh pages
  // (~0.6 ms of page faults on the main thread for a 1.7 MB chunk). The order of the records in
  // one batch means nothing else here: every key in it is different.
  for (const { lane, entry, value } of plan.chunks) ops.push({ type: 'put', key: chunkKey(lane, entry.lastSeq), value });
  let bytes = 0;
  for (const op of ops) if (op.type === 'put') bytes += op.key.length + op.value.length;
  return { ops, bytes };
}
