/**
 * The ring log on classic-level (LevelDB). The guarantees are in buffer/types.ts and buffer/SPEC.md;
 * this file composes the parts that keep them, each owning its state:
 *
 *   store.ts         the LevelDB handle and the log's files
 *   recovery.ts      open, repair or move aside, read back meta and cursors (O(metadata))
 *   lease.ts         the seq lease (a floor for seq after a lost database)
 *   commit.ts        appends waiting for their commit; the one place a batch is assembled
 *   group-commit.ts  when commits run (leader/follower, the fsync bound)
 *   eviction.ts      the oldest chunks' index and the eviction plan (retention, capacity)
 *   quarantine.ts    damaged chunks found by readers, planned for deletion
 *   readers.ts       the named readers and the cursor part of a commit
 *   disk-guard.ts    the disk reserve: the log's limit, refusal when critical, compaction
 *   chunk-source.ts  chunks for readers (recent ring, cache, database); wire.ts builds envelopes
 *
 * The parts return plans; only this file writes. Commit order (the invariant everything leans on):
 * `append` assigns seqs and encodes the events synchronously, then waits. One commit at a time
 * takes everything waiting and writes ONE LevelDB batch with `sync: true` holding, atomically: the
 * new chunk(s) with their index entries, the deletions of evicted and quarantined chunks, the meta
 * record and the cursors of readers that moved. Only when that write resolves are the appends
 * resolved and the events made visible to readers. So after any crash the database holds a prefix
 * of commits whose meta matches its chunks exactly.
 *
 * Why this file is over ~400 lines: it is the one writer. `commitOnce` applies every part's plan in
 * one batch, and keeping it beside append, open and close keeps the commit order above readable in
 * one place; what could move out (the parts listed above) has.
 */
import { randomInt } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { EventInput, StoredEvent } from '../src/core/event.js';
import { silentLogger } from '../src/core/log.js';
import { type ChunkRead, ChunkSource } from './chunk-source.js';
import { ClockWatch, SYNCED_AFTER } from './clock.js';
import { assembleBatch, fail, PendingAppends, settle } from './commit.js';
import { DiskGuard } from './disk-guard.js';
import { GroupCommit } from './group-commit.js';
import { OldestIndex, planEvictions } from './eviction.js';
import type { IndexEntry, Lane } from './keys.js';
import { LANES, META_KEY } from './keys.js';
import { SeqLease } from './lease.js';
import { applyCommit, emptyMeta, type Meta, metaBytes, parseMeta } from './meta.js';
import { Quarantine } from './quarantine.js';
import type { Reader, ReaderHost } from './reader.js';
import { ReaderSet } from './readers.js';
import { recover } from './recovery.js';
import { fsyncBound, type RingLogConfig } from './schema.js';
import { Store } from './store.js';
import { type AppendResult, BufferFullError, type BufferStats, type LogReader, type ReaderOptions, type ReaderStats, type RingLog } from './types.js';

export { paths, RingLogOpenError } from './store.js';

export interface RingLogOptions {
  /** The gateway's data directory; the log keeps its files under `<dir>/ringlog*`. */
  dir: string;
  gatewayId: string;
  config: RingLogConfig;
  logger?: Logger;
  /** The wall clock (tests simulate a Pi that boots in 1970). */
  now?: () => number;
  /**
   * Inspection (`sluice buffer`): no repair, no lease, no maintenance, appends refused, cursors not
   * written. Fails with RingLogOpenError when there is no log or it is in use.
   */
  readOnly?: boolean;
}

/**
 * Encoded events waiting for their commit, at most; past it appends are refused (a QoS 1 publish is
 * then not acknowledged and comes again). Bounds memory when the disk cannot keep up.
 */
const MAX_PENDING_BYTES = 8 * 1024 * 1024;

export class LevelRingLog implements RingLog, ReaderHost {
  closed = false;
  private meta: Meta = emptyMeta();
  private readonly cfg: RingLogConfig;
  private readonly logger: Logger;
  private readonly boot = randomInt(1, 0xffff_ffff);
  private readonly clock: ClockWatch;
  private readonly now: () => number;
  private readonly store: Store;
  private readonly lease: SeqLease;
  private readonly pending: PendingAppends;
  private readonly oldest: OldestIndex;
  private readonly source: ChunkSource;
  private readonly quarantine: Quarantine;
  private readonly disk: DiskGuard;
  private readonly readers = new ReaderSet(this);

  private readonly group: GroupCommit;
  private maintenanceDue = false;
  private maintenanceTimer: NodeJS.Timeout | null = null;
  private afterWrite: Array<() => void> = [];
  private bytesWritten = 0;
  private commits = 0;
  private fsyncs = 0;
  private roomWanted = 0;
  private failure: Error | null = null;
  private lastRetention = 0;
  private warnedOversize = false;

  constructor(private readonly opts: RingLogOptions) {
    this.cfg = opts.config;
    this.logger = opts.logger ?? silentLogger;
    this.now = opts.now ?? Date.now;
    this.clock = new ClockWatch(this.now);
    this.store = new Store(opts.dir, opts.readOnly === true);
    this.lease = new SeqLease(this.store.paths.lease);
    this.pending = new PendingAppends(opts.gatewayId);
    this.oldest = new OldestIndex(this.store);
    this.source = new ChunkSource(this.store, this.logger);
    this.quarantine = new Quarantine(this.store, this.logger);
    this.disk = new DiskGuard(this.store, this.cfg, this.logger);
    this.group = new GroupCommit(fsyncBound(this.cfg), this.cfg.commitEvents, {
      waiting: () => this.pending.count,
      needsWrite: () => this.needsWrite(),
      canWrite: () => this.store.isOpen && this.failure === null,
      commit: () => this.commitOnce(),
    });
  }

  get healthy(): boolean {
    return !this.closed && this.failure === null;
  }

  // ---------------------------------------------------------------- open

  async open(): Promise<void> {
    const ro = this.opts.readOnly === true;
    if (!ro) await mkdir(this.opts.dir, { recursive: true });
    const got = await recover(this.store, await this.lease.read(), this.logger);
    this.meta = got.meta;
    this.readers.restore(got.readers);
    await this.oldest.reload();
    this.source.setClockFixes(this.meta.clockFix);
    if (ro) return;
    if (this.lease.due(this.meta.nextSeq)) await this.lease.renew(this.meta.nextSeq);
    // A log that starts without a meta record writes one now, so a start that fails before its
    // first commit leaves the seq where it was instead of taking it from the lease next time.
    if (got.fromLease) await this.store.db.put(META_KEY, Buffer.from(JSON.stringify(this.meta)), { sync: true });
    this.maintenanceTimer = setInterval(() => this.maintain(), 1000);
    this.maintenanceTimer.unref();
    void this.disk.check(this.bytes());
    this.logger.info({ events: this.stats().events, bytes: this.bytes(), nextSeq: this.meta.nextSeq, readers: this.readers.size }, 'ring log open');
  }

  // ---------------------------------------------------------------- append

  append(events: EventInput[]): Promise<AppendResult> {
    const r = this.enqueue(events);
    if (r instanceof Error) return Promise.reject(r);
    if (r === null) return Promise.resolve({ firstSeq: this.meta.nextSeq, lastSeq: this.meta.nextSeq - 1 });
    return this.pending.wait(r, this.meta.nextSeq - 1);
  }

  /** Encodes the events into the pending chunks; returns their first seq, null for none, or why not. */
  private enqueue(events: EventInput[]): number | null | Error {
    if (this.closed) return new Error('the ring log is closed');
    if (this.opts.readOnly) return new Error('the ring log is open for inspection only');
    const n = events.length;
    if (n === 0) return null;
    const refuse = (err: Error) => {
      this.meta.refused += n;
      return err;
    };
    if (this.failure) return refuse(new Error(`the ring log cannot write: ${this.failure.message}`));
    if (this.disk.critical)
      return refuse(new BufferFullError('the disk is nearly full (no room over half of buffer.diskReserve for the database to compact); the event was not accepted'));
    if (this.pending.bytes > MAX_PENDING_BYTES)
      return refuse(new BufferFullError('the ring log is behind on writing (disk too slow); try again', 'write_behind'));
    const first = this.meta.nextSeq;
    let encoded: { added: number; undo: () => void };
    try {
      encoded = this.pending.encode(events, first, this.now(), this.clock);
    } catch (err) {
      // Permanent (the same events fail again): producers answer it as bad input, not "retry later".
      return Object.assign(new Error(`event not encodable: ${(err as Error).message}`), { code: 'EVENT_NOT_ENCODABLE' });
    }
    if (this.cfg.onFull === 'reject' && this.bytes() + this.pending.bytes + encoded.added > this.capacity()) {
      encoded.undo();
      // Remember how much room the refused call needed: the next write releases that much of what
      // every reader already delivered.
      this.roomWanted = Math.max(this.roomWanted, encoded.added);
      return refuse(
        this.disk.low ? new BufferFullError('the disk reserve (buffer.diskReserve) is reached; the event was not accepted') : new BufferFullError(),
      );
    }
    this.meta.nextSeq = first + n;
    this.pending.accept(n, encoded.added);
    this.group.kick();
    return first;
  }

  private bytes(): number {
    return metaBytes(this.meta);
  }

  /** Bytes the log may hold now: the configured budget, or less when the disk reserve is reached. */
  private capacity(): number {
    return Math.min(this.cfg.maxBytes, this.disk.limit);
  }

  // ---------------------------------------------------------------- group commit

  private needsWrite(): boolean {
    return this.readers.needsWrite || this.quarantine.size > 0 || this.maintenanceDue;
  }

  /** One write batch carrying everything due; resolves true when it was fsynced. */
  private async commitOnce(): Promise<boolean> {
    this.maintenanceDue = false;
    const doneCallbacks = this.afterWrite;
    this.afterWrite = [];
    const taken = this.pending.take(this.boot, (bytes) => this.source.recent.region(bytes));
    const { chunks, waiters, count } = taken;
    const newBytes = chunks.reduce((n, c) => n + c.value.length, 0);

    // Plans: disk headroom, evictions, quarantine; applied to memory only after the write succeeded.
    await this.disk.beforeWrite(newBytes, this.bytes());
    const now = this.now();
    const retention = now - this.lastRetention >= 1000 && now > SYNCED_AFTER;
    if (retention) this.lastRetention = now;
    const { plan: evict, over } = await planEvictions(this.oldest, {
      bytes: this.bytes() + newBytes,
      capacity: this.capacity(),
      maxBytes: this.cfg.maxBytes,
      diskLimit: this.disk.limit,
      onFull: this.cfg.onFull,
      roomWanted: this.roomWanted,
      horizon: retention ? now - this.cfg.retention : null,
      delivered: (e) => this.readers.deliveredToAll(e),
    });
    if (over > 0 && !this.warnedOversize) {
      this.warnedOversize = true;
      this.logger.warn({ over }, 'one commit is larger than the whole buffer budget; it is kept until the next eviction');
    }
    const quarantine = await this.quarantine.plan(new Set(evict.map((e) => `${e.lane}:${e.lastSeq}`)));
    this.clock.poll();
    const meta = applyCommit(this.meta, chunks, evict, quarantine);
    if (this.clock.offset !== null) meta.clockFix[String(this.boot)] = this.clock.offset;

    const removing = [...evict, ...quarantine];
    const cursorPlan = this.readers.plan(removing);
    const { cursors, dropped } = cursorPlan;
    const { ops, bytes } = assembleBatch({ chunks, evict, quarantine, meta, cursors, dropped });

    // Seqs are made durable below the lease (a lease that cannot be written is logged, not fatal:
    // it matters only if the database is lost too).
    if (this.lease.due(this.meta.nextSeq))
      await this.lease.renew(this.meta.nextSeq).catch((err: Error) => this.logger.error({ err: err.message }, 'seq lease not written'));
    const sync = count > 0 || removing.length > 0;
    try {
      // The chunks are views on the recent ring. It hands out its next region only in the next
      // commit, after this write resolved, so they stay as built for as long as LevelDB needs them.
      await this.store.write(ops, sync);
    } catch (err) {
      cursorPlan.undo();
      this.failWrite(err as Error, count);
      fail(waiters, new Error(`the ring log write failed: ${(err as Error).message}`));
      for (const f of doneCallbacks) f();
      return false;
    }
    this.bytesWritten += bytes;
    this.commits++;
    if (sync) this.fsyncs++;
    if (evict.length > 0) this.roomWanted = 0;
    // Appends made while this batch was being written already advanced nextSeq (and refused) on
    // the live meta: keep those, or the next appends would reuse seqs and overwrite chunks.
    meta.nextSeq = Math.max(meta.nextSeq, this.meta.nextSeq);
    meta.refused = this.meta.refused;
    this.meta = meta;
    for (const e of removing) {
      this.oldest.removed(e);
      this.source.forget(e.lane, e.lastSeq);
    }
    for (const { lane, value, entry, at } of chunks) {
      this.oldest.added(entry);
      this.source.recent.add(lane, entry.firstSeq, entry.lastSeq, value, at);
    }
    this.source.setClockFixes(meta.clockFix);
    await this.oldest.topUp();
    settle(waiters);
    for (const f of doneCallbacks) f();
    this.readers.wake();
    return sync;
  }

  private failWrite(err: Error, count: number): void {
    this.meta.refused += count;
    if (this.failure) return;
    this.failure = err;
    this.logger.error({ err: err.message }, 'ring log write failed; refusing appends until the database reopens');
    setTimeout(() => void this.reopenAfterFailure(), 1000).unref();
  }

  /** LevelDB refuses all writes after a failed one: reopen it (recovering its log) and carry on. */
  private async reopenAfterFailure(): Promise<void> {
    if (this.closed) return;
    try {
      await this.disk.compaction;
      await this.store.close();
      await this.store.open();
      const raw = await this.store.db.get(META_KEY);
      const onDisk = (raw && parseMeta(raw)) || emptyMeta();
      // The failed batch may or may not have reached the disk: trust the database, keep seq ahead.
      this.meta = { ...onDisk, nextSeq: Math.max(onDisk.nextSeq, this.meta.nextSeq), refused: this.meta.refused };
      await this.oldest.reload();
      this.source.clear();
      this.readers.touchAll();
      this.failure = null;
      this.logger.info('ring log database reopened; appends accepted again');
      this.group.kick();
    } catch (err) {
      this.logger.error({ err: (err as Error).message }, 'ring log database still failing; retrying');
      setTimeout(() => void this.reopenAfterFailure(), 2000).unref();
    }
  }

  /** Once a second: disk headroom, retention, clock sync; a write only when one of them needs it. */
  private maintain(): void {
    if (this.closed) return;
    void this.disk.check(this.bytes()).then(() => {
      if (this.closed) return;
      const now = this.now();
      const horizon = now - this.cfg.retention;
      const retentionDue = now > SYNCED_AFTER && LANES.some((l) => (this.oldest.front(l)?.maxTs ?? Number.POSITIVE_INFINITY) < horizon);
      if (retentionDue || this.bytes() > this.capacity() || this.roomWanted > 0 || this.clock.syncPending()) {
        this.maintenanceDue = true;
        this.group.kick();
      }
    });
  }

  // ---------------------------------------------------------------- readers

  reader(name: string, options?: ReaderOptions): LogReader {
    return this.readers.get(name, options);
  }

  async dropReader(name: string): Promise<void> {
    this.readers.drop(name);
    await this.flushMeta();
  }

  persistReader(reader: Reader): Promise<void> {
    if (!this.store.isOpen || this.opts.readOnly || !this.readers.touch(reader)) return Promise.resolve();
    return this.flushMeta();
  }

  /** Resolves after the next write batch (which carries cursors and drops). */
  private flushMeta(): Promise<void> {
    return new Promise((resolve) => {
      this.afterWrite.push(resolve);
      this.group.kick();
    });
  }

  laneLast(lane: Lane): number {
    return this.meta.lanes[lane].lastSeq;
  }

  laneSpan(lane: Lane): { events: number; firstSeq: number; lastSeq: number } {
    const m = this.meta.lanes[lane];
    const front = this.oldest.front(lane);
    return { events: m.events, firstSeq: front ? front.firstSeq : m.lastSeq, lastSeq: m.lastSeq };
  }

  async chunkAfter(lane: Lane, p: number): Promise<ChunkRead | null> {
    const read = await this.source.after(lane, p);
    if (read?.corrupt && !this.opts.readOnly) {
      this.quarantine.add(lane, read.corrupt.lastSeq);
      this.group.kick();
    }
    return read;
  }

  // ---------------------------------------------------------------- inspection, stats, close

  /** Stats of every known reader (persisted cursors included), for `sluice buffer stats`. */
  readerStats(): ReaderStats[] {
    return this.readers.stats();
  }

  /** Every event with fromSeq <= seq <= toSeq, both lanes merged in seq order (export). */
  scan(fromSeq?: number, toSeq?: number): AsyncGenerator<StoredEvent> {
    return this.source.scan(fromSeq, toSeq);
  }

  /** The last `n` events (both lanes), oldest first. */
  tail(n: number): Promise<StoredEvent[]> {
    return this.source.tail(n);
  }

  stats(): BufferStats {
    const m = this.meta;
    const fronts = LANES.map((l) => this.oldest.front(l)).filter((e): e is IndexEntry => e !== undefined);
    return {
      events: m.lanes[0].events + m.lanes[1].events,
      bytes: this.bytes(),
      maxBytes: this.cfg.maxBytes,
      evicted: m.evicted,
      evictedByReason: { ...m.evictedByReason },
      quarantined: m.quarantined,
      refused: m.refused,
      oldestTs: fronts.length ? Math.min(...fronts.map((e) => e.minTs)) : null,
      firstSeq: fronts.length ? Math.min(...fronts.map((e) => e.firstSeq)) : m.nextSeq,
      lastSeq: m.nextSeq - 1,
      bytesWritten: this.bytesWritten,
      commits: this.commits,
      fsyncs: this.fsyncs,
      pendingBytes: this.pending.bytes,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.maintenanceTimer) clearInterval(this.maintenanceTimer);
    // Drain: wait for the write in flight, then commit whatever is still pending.
    await this.group.drain();
    for (const f of this.afterWrite.splice(0)) f();
    this.readers.wake(true);
    await this.disk.compaction;
    await this.store.close();
  }
}
