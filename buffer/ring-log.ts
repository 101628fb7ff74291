/**
 * The ring log on classic-level (LevelDB). The guarantees are in buffer/types.ts and buffer/SPEC.md;
 * this is how they are kept.
 *
 * Commit order (the invariant everything else leans on): `append` assigns seqs and encodes the
 * events synchronously into column arrays, then waits. One commit at a time takes everything
 * waiting and writes ONE LevelDB batch with `sync: true` holding, atomically: the new chunk(s)
 * (one per lane) with their index entries, the deletions of evicted chunks, the meta record
 * (nextSeq, per-lane totals, counters) and the cursors of readers that moved. Only when that write
 * resolves are the appends resolved and the events made visible to readers. So after any crash the
 * database holds a prefix of commits whose meta matches its chunks exactly, and recovery reads the
 * meta record, the reader cursors and one index entry per lane: O(metadata), never O(events).
 *
 * `seq` is never reused: meta.nextSeq is written in every commit, and a lease file one million
 * seqs ahead (rewritten only when crossed) survives even a database that has to be thrown away.
 */
import { randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, stat, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import type { Logger } from 'pino';
import type { BufferConfig } from '../src/config/schema.js';
import type { EventInput, StoredEvent } from '../src/event.js';
import { silentLogger } from '../src/log.js';
import { ChunkBuilder, ChunkCorruptError, type DecodedChunk, decodeChunk, KIND_CODE, UNSYNCED } from './chunk.js';
import { ClockWatch, correctJsonTs, SYNCED_AFTER } from './clock.js';
import {
  CHUNKS_START,
  chunkEnd,
  chunkKey,
  decodeIndex,
  encodeIndex,
  type IndexEntry,
  indexEnd,
  INDEX_END,
  indexKey,
  LANE_NORMAL,
  LANE_PRIORITY,
  LANES,
  type Lane,
  META_KEY,
  READERS_END,
  READERS_START,
  readerKey,
  seqOfKey,
} from './keys.js';
import { type ChunkRead, firstAfter, type PersistedReader, Reader, type ReaderHost } from './reader.js';
import { RecentChunks } from './recent-chunks.js';
import {
  type AppendResult,
  BufferFullError,
  type BufferStats,
  type LogReader,
  type ReaderOptions,
  type ReaderStats,
  type RingLog,
} from './types.js';

type DB = ClassicLevel<Buffer, Buffer>;

export interface RingLogOptions {
  /** The gateway's data directory; the log keeps its files under `<dir>/ringlog*`. */
  dir: string;
  gatewayId: string;
  config: BufferConfig;
  logger?: Logger;
  /** The wall clock (tests simulate a Pi that boots in 1970). */
  now?: () => number;
  /**
   * Inspection (`sluice buffer`): no repair, no lease, no maintenance, appends refused, cursors not
   * written. Fails with RingLogOpenError when there is no log or it is in use.
   */
  readOnly?: boolean;
}

/** The log cannot be opened for a reason that repairing would not fix (in use, permissions, no log). */
export class RingLogOpenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RingLogOpenError';
  }
}

/** Errors that say nothing about the database's health: never a reason to repair or quarantine it. */
function notDamage(err: Error): string | null {
  const cause = (err as Error & { cause?: Error & { code?: string } }).cause;
  const text = `${err.message} ${cause?.message ?? ''}`;
  if (cause?.code === 'LEVEL_LOCKED' || /\block\b.*(held|temporarily unavailable)/i.test(text))
    return 'it is in use by another process (is the gateway running?)';
  if (/permission denied|EACCES|EPERM/i.test(text)) return 'permission denied';
  if (/read-only file system|EROFS/i.test(text)) return 'the file system is read-only';
  if (/no space left|ENOSPC/i.test(text)) return 'the disk is full';
  return null;
}

interface LaneMeta {
  events: number;
  bytes: number;
  /** Seq of the last event ever written to this lane (0 when none). */
  lastSeq: number;
}

interface Meta {
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

/** Seqs handed out ahead of the persisted lease (see the header comment). */
const LEASE_STEP = 1_000_000;
/** Recent chunks kept encoded for readers at the head of the log; every commit is built in this ring. */
const RECENT_BYTES = 4 * 1024 * 1024;
/** Decoded older chunks kept for readers working through a backlog. */
const DISK_CACHE_CHUNKS = 8;
/** Index entries of the oldest chunks held in memory per lane (refilled from disk). */
const OLDEST_BATCH = 512;
const QUARANTINE_MAX_BYTES = 64 * 1024 * 1024;

export function paths(dir: string) {
  return {
    db: join(dir, 'ringlog'),
    lease: join(dir, 'ringlog.lease'),
    quarantine: join(dir, 'ringlog-quarantine'),
  };
}

function emptyMeta(nextSeq = 1): Meta {
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

/** Appends waiting for their commit, column-wise: `ok[i]` resolves a promise, `fail[i]` rejects it. */
interface Waiters {
  ok: Array<(r: AppendResult) => void>;
  fail: Array<(e: Error) => void>;
  first: number[];
  last: number[];
}

const newWaiters = (): Waiters => ({ ok: [], fail: [], first: [], last: [] });

/**
 * Encoded events waiting for their commit, at most; past it appends are refused (a QoS 1 publish is
 * then not acknowledged and comes again). Bounds memory when the disk cannot keep up: every pending
 * event also holds its producer's objects (promise, payload) until it is durable.
 */
const MAX_PENDING_BYTES = 8 * 1024 * 1024;

/** The oldest chunks of a lane, in order, as far as loaded. */
class OldestQueue {
  entries: IndexEntry[] = [];
  /** True when `entries` holds every chunk of the lane (new chunks are then appended in memory). */
  complete = false;

  constructor(readonly lane: Lane) {}
}

export class LevelRingLog implements RingLog, ReaderHost {
  closed = false;
  private db!: DB;
  private meta: Meta = emptyMeta();
  private readonly cfg: BufferConfig;
  private readonly logger: Logger;
  private readonly paths: ReturnType<typeof paths>;
  private readonly boot = randomInt(1, 0xffff_ffff);
  private readonly clock: ClockWatch;
  private readonly now: () => number;
  private lease = 0;

  private readonly pending: [ChunkBuilder, ChunkBuilder];
  private waiters: Waiters = newWaiters();
  private pendingCount = 0;
  private pendingBytes = 0;
  private groupStartedAt = 0;
  private writing = false;
  private timer: NodeJS.Timeout | null = null;
  private maintenanceTimer: NodeJS.Timeout | null = null;
  private afterWrite: Array<() => void> = [];

  private readonly oldest: [OldestQueue, OldestQueue] = [new OldestQueue(0), new OldestQueue(1)];
  private readonly recent = new RecentChunks(RECENT_BYTES);
  private readonly diskCache = new Map<string, DecodedChunk>();

  private readonly readers = new Map<string, Reader>();
  private readonly dirtyReaders = new Set<string>();
  private readonly droppedReaders = new Set<string>();
  private readonly toQuarantine = new Map<string, { lane: Lane; lastSeq: number }>();

  private bytesWritten = 0;
  private commits = 0;
  private roomWanted = 0;
  private failure: Error | null = null;
  private diskLimit = Number.POSITIVE_INFINITY;
  private diskFree = Number.POSITIVE_INFINITY;
  private diskLow = false;
  private diskCritical = false;
  private compacting = false;
  /** The compaction in flight: closing the database waits for it. */
  private compaction: Promise<void> | null = null;
  private writeBufferSize = 8 * 1024 * 1024;
  private writtenSinceStatfs = 0;
  private lastRetention = 0;
  private quarantineBytes = 0;
  private warnedOversize = false;

  constructor(private readonly opts: RingLogOptions) {
    this.cfg = opts.config;
    this.logger = opts.logger ?? silentLogger;
    this.paths = paths(opts.dir);
    this.now = opts.now ?? Date.now;
    this.clock = new ClockWatch(this.now);
    this.pending = [new ChunkBuilder(opts.gatewayId), new ChunkBuilder(opts.gatewayId)];
  }

  get healthy(): boolean {
    return !this.closed && this.failure === null;
  }

  // ---------------------------------------------------------------- open and recovery

  async open(): Promise<void> {
    const ro = this.opts.readOnly === true;
    if (!ro) await mkdir(this.opts.dir, { recursive: true });
    this.lease = await this.readLease();
    let recovered = false;
    try {
      this.db = await this.openDb();
    } catch (err) {
      if (err instanceof RingLogOpenError) throw err;
      const reason = notDamage(err as Error);
      if (reason) throw new RingLogOpenError(`cannot open the ring log in ${this.paths.db}: ${reason}`);
      if (ro) throw new RingLogOpenError(`cannot open the ring log in ${this.paths.db}: ${(err as Error).message}`);
      recovered = true;
      this.db = await this.recoverDb(err as Error);
    }
    try {
      await this.load(recovered);
    } catch (err) {
      // Opened, but its metadata or index does not read back (a damaged table file): repair, and
      // if even that does not give a readable database, move it aside.
      if (ro) throw new RingLogOpenError(`cannot read the ring log in ${this.paths.db}: ${(err as Error).message}`);
      await this.db.close().catch(() => undefined);
      this.db = await this.recoverDb(err as Error);
      try {
        await this.load(true);
      } catch (err2) {
        await this.db.close().catch(() => undefined);
        this.db = await this.setAside(err2 as Error);
        await this.load(true);
      }
    }
    if (!ro) await this.ensureLease(this.meta.nextSeq);
    if (ro) return;
    this.maintenanceTimer = setInterval(() => this.maintain(), 1000);
    this.maintenanceTimer.unref();
    void this.checkDisk();
    this.logger.info(
      { events: this.stats().events, bytes: this.bytes(), nextSeq: this.meta.nextSeq, readers: this.readers.size },
      'ring log open',
    );
  }

  /**
   * Reads what recovery needs: the meta record, reader cursors, the oldest index entries per lane.
   * O(metadata). Only after a repair (`recovered`) are the per-lane totals rebuilt from the index.
   * Throws when LevelDB cannot read them.
   */
  private async load(recovered: boolean): Promise<void> {
    const quarantinedBefore = this.meta.quarantined;
    this.readers.clear();
    this.oldest[0] = new OldestQueue(0);
    this.oldest[1] = new OldestQueue(1);
    let meta: Meta | null = null;
    const raw = await this.db.get(META_KEY);
    if (raw) {
      try {
        meta = JSON.parse(raw.toString('utf8')) as Meta;
      } catch {
        this.logger.error('ring log metadata damaged: totals are rebuilt, seq continues above the lease');
        recovered = true;
      }
    }
    if (meta && meta.v === 1) {
      this.meta = { ...emptyMeta(), ...meta };
    } else {
      if (meta) recovered = true;
      this.meta = emptyMeta();
    }
    this.meta.quarantined += quarantinedBefore;
    if (recovered || !meta) {
      // A database rebuilt or thrown away, or a fresh one: seq continues above anything handed out before.
      this.meta.nextSeq = Math.max(this.meta.nextSeq, this.lease);
      if (recovered) await this.recount();
    }
    for await (const [k, v] of this.db.iterator({ gte: READERS_START, lt: READERS_END })) {
      const name = k.subarray(1).toString('utf8');
      try {
        // Every known reader is live from the start, so evictions count its skips even before its
        // uplink asks for it again; reader(name, options) then only applies the options.
        this.readers.set(name, new Reader(name, this, JSON.parse(v.toString('utf8')) as PersistedReader));
      } catch {
        this.logger.warn(
          { reader: name },
          'unreadable reader cursor ignored: that reader starts from the oldest event',
        );
      }
    }
    for (const lane of LANES) await this.refillOldest(lane);
  }

  private async openDb(): Promise<DB> {
    const ro = this.opts.readOnly === true;
    if (ro && !existsSync(join(this.paths.db, 'CURRENT')))
      throw new RingLogOpenError(`no ring log in ${this.opts.dir} (expected ${this.paths.db})`);
    const db = new ClassicLevel<Buffer, Buffer>(this.paths.db, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    // Small write buffer and cache: RAM is scarce on a Pi, and chunks are written once, read rarely.
    // An 8 MiB memtable: fewer flushes and write stalls under bursts of large commits; two of them
    // (active + flushing) are the bulk of LevelDB's memory here.
    // On a small filesystem the memtable (and so the write-ahead log) is scaled down to 1/32 of it.
    let writeBufferSize = 8 * 1024 * 1024;
    try {
      const s = await statfs(this.opts.dir);
      writeBufferSize = Math.max(256 * 1024, Math.min(writeBufferSize, Math.floor((s.blocks * s.bsize) / 32)));
    } catch {
      // keep the default
    }
    this.writeBufferSize = writeBufferSize;
    await db.open({ createIfMissing: !ro, writeBufferSize, cacheSize: 2 * 1024 * 1024 });
    return db;
  }

  /**
   * The database did not open or does not read back. Try LevelDB's repair (it drops what it cannot
   * read); if it still does not open, move the whole directory aside and start a fresh one.
   */
  private async recoverDb(first: Error): Promise<DB> {
    this.logger.error({ err: first.message }, 'ring log database damaged; repairing');
    try {
      await ClassicLevel.repair(this.paths.db);
      const db = await this.openDb();
      this.logger.warn('ring log database repaired; unreadable records were dropped');
      return db;
    } catch (err) {
      return this.setAside(err as Error);
    }
  }

  private async setAside(err: Error): Promise<DB> {
    await mkdir(this.paths.quarantine, { recursive: true });
    const aside = join(this.paths.quarantine, `db-${new Date().toISOString().replace(/[:.]/g, '-')}`);
    await rename(this.paths.db, aside).catch(() => undefined);
    this.logger.error(
      { err: err.message, movedTo: aside },
      'ring log database cannot be repaired: moved aside, starting an empty log (seq continues)',
    );
    this.meta.quarantined += 1;
    return this.openDb();
  }

  /** After a repair, per-lane totals are rebuilt from the index (the one case that walks it). */
  private async recount(): Promise<void> {
    for (const lane of LANES) {
      const m: LaneMeta = { events: 0, bytes: 0, lastSeq: this.meta.lanes[lane].lastSeq };
      for await (const [k, v] of this.db.iterator({ gte: indexKey(lane, 0), lt: indexEnd(lane) })) {
        const e = decodeIndex(k, v);
        if (!e) continue;
        m.events += e.count;
        m.bytes += e.bytes;
        if (e.lastSeq > m.lastSeq) m.lastSeq = e.lastSeq;
        if (e.lastSeq >= this.meta.nextSeq) this.meta.nextSeq = e.lastSeq + 1;
      }
      this.meta.lanes[lane] = m;
    }
  }

  private async readLease(): Promise<number> {
    try {
      const n = Number((await readFile(this.paths.lease, 'utf8')).trim());
      return Number.isSafeInteger(n) && n > 0 ? n : 1;
    } catch {
      return 1;
    }
  }

  /** Keeps the lease file ahead of every seq handed out; fsynced, rewritten once per LEASE_STEP seqs. */
  private async ensureLease(nextSeq: number): Promise<void> {
    if (nextSeq + LEASE_STEP / 2 < this.lease) return;
    const lease = nextSeq + LEASE_STEP;
    const tmp = `${this.paths.lease}.tmp`;
    await writeFile(tmp, `${lease}\n`);
    const fh = await open(tmp, 'r+');
    await fh.sync();
    await fh.close();
    await rename(tmp, this.paths.lease);
    this.lease = lease;
  }

  // ---------------------------------------------------------------- append and group commit

  append(events: EventInput[]): Promise<AppendResult> {
    const r = this.enqueue(events);
    if (r instanceof Error) return Promise.reject(r);
    if (r === null) return Promise.resolve({ firstSeq: this.meta.nextSeq, lastSeq: this.meta.nextSeq - 1 });
    const w = this.waiters;
    return new Promise<AppendResult>((resolve, reject) => {
      w.ok.push(resolve);
      w.fail.push(reject);
      w.first.push(r);
      w.last.push(this.meta.nextSeq - 1);
    });
  }

  /** Encodes the events into the pending chunks; returns their first seq, null for none, or why not. */
  private enqueue(events: EventInput[]): number | null | Error {
    if (this.closed) return new Error('the ring log is closed');
    if (this.opts.readOnly) return new Error('the ring log is open for inspection only');
    const n = events.length;
    if (n === 0) return null;
    if (this.failure) {
      this.meta.refused += n;
      return new Error(`the ring log cannot write: ${this.failure.message}`);
    }
    if (this.diskCritical) {
      this.meta.refused += n;
      return new BufferFullError('the disk is nearly full (below half of buffer.diskReserve free); the event was not accepted');
    }
    if (this.pendingBytes > MAX_PENDING_BYTES) {
      this.meta.refused += n;
      return new BufferFullError('the ring log is behind on writing (disk too slow); try again', 'write_behind');
    }
    const first = this.meta.nextSeq;
    const now = this.now();
    const p0 = this.pending[0];
    const p1 = this.pending[1];
    const m0 = p0.mark();
    const m1 = p1.mark();
    const before = p0.bytes + p1.bytes;
    let seq = first;
    try {
      for (let i = 0; i < n; i++, seq++) {
        const e = events[i];
        const ts = e.ts ?? now;
        const unsynced = this.clock.unsynced(ts);
        const kind = e.kind ?? 'reading';
        const code = (KIND_CODE[kind] ?? 0) | (unsynced ? UNSYNCED : 0);
        (kind === 'anomaly' ? p1 : p0).add(seq, ts, code, e);
      }
    } catch (err) {
      // Nothing of this call is accepted: roll the pending chunks back.
      p0.rollback(m0);
      p1.rollback(m1);
      // Permanent (the same events fail again): producers answer it as bad input, not "retry later".
      return Object.assign(new Error(`event not encodable: ${(err as Error).message}`), { code: 'EVENT_NOT_ENCODABLE' });
    }
    const added = p0.bytes + p1.bytes - before;
    if (this.cfg.onFull === 'reject' && this.bytes() + this.pendingBytes + added > this.capacity()) {
      p0.rollback(m0);
      p1.rollback(m1);
      this.meta.refused += n;
      // Remember how much room the refused call needed: the next write releases that much of what
      // every reader already delivered.
      this.roomWanted = Math.max(this.roomWanted, added);
      return this.diskLow
        ? new BufferFullError('the disk reserve (buffer.diskReserve) is reached; the event was not accepted')
        : new BufferFullError();
    }
    this.meta.nextSeq = seq;
    this.pendingBytes += added;
    if (this.pendingCount === 0) this.groupStartedAt = performance.now();
    this.pendingCount += n;
    this.schedule();
    return first;
  }

  private bytes(): number {
    return this.meta.lanes[0].bytes + this.meta.lanes[1].bytes;
  }

  /** Bytes the log may hold now: the configured budget, or less when the disk reserve is reached. */
  private capacity(): number {
    return Math.min(this.cfg.maxBytes, this.diskLimit);
  }

  private schedule(): void {
    if (this.writing || this.runQueued || this.closedDb || this.failure) return;
    if (this.pendingCount >= this.cfg.commitEvents || (this.pendingCount === 0 && this.needsWrite())) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      this.runQueued = true;
      // setImmediate, not a microtask: appends arriving in the same I/O phase join this commit.
      setImmediate(() => void this.run());
      return;
    }
    if (!this.timer && this.pendingCount > 0) {
      const delay = Math.max(0, this.groupStartedAt + this.cfg.commitInterval - performance.now());
      this.timer = setTimeout(() => {
        this.timer = null;
        void this.run();
      }, delay);
    }
  }

  private runQueued = false;
  private maintenanceDue = false;
  private closedDb = false;

  private needsWrite(): boolean {
    return (
      this.dirtyReaders.size > 0 || this.droppedReaders.size > 0 || this.toQuarantine.size > 0 || this.maintenanceDue
    );
  }

  /** The commit loop: one write in flight at a time; whatever arrives meanwhile goes in the next. */
  private async run(): Promise<void> {
    this.runQueued = false;
    if (this.writing || this.closedDb) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.writing = true;
    try {
      for (;;) {
        const due =
          this.pendingCount >= this.cfg.commitEvents ||
          (this.pendingCount > 0 && performance.now() >= this.groupStartedAt + this.cfg.commitInterval) ||
          (this.pendingCount > 0 && this.closed) ||
          this.needsWrite();
        if (!due || this.closedDb || this.failure) break;
        await this.commitOnce();
      }
    } finally {
      this.writing = false;
    }
    this.schedule();
  }

  private async commitOnce(): Promise<void> {
    const waiters = this.waiters;
    const count = this.pendingCount;
    this.waiters = newWaiters();
    this.pendingCount = 0;
    this.pendingBytes = 0;
    this.maintenanceDue = false;
    const doneCallbacks = this.afterWrite;
    this.afterWrite = [];

    type Op = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };
    const ops: Op[] = [];
    // The chunks go last in the batch. LevelDB's batch is one growing string: a chunk appended first
    // makes the next small record reallocate and copy the whole of it again, into fresh pages
    // (~0.6 ms of page faults on the main thread for a 1.7 MB chunk). The order of the records in
    // one batch means nothing else here: every key in it is different.
    const chunkOps: Op[] = [];
    const newChunks: Array<{ lane: Lane; value: Buffer; entry: IndexEntry }> = [];
    let newBytes = 0;
    for (const lane of LANES) {
      const p = this.pending[lane];
      if (p.count === 0) continue;
      // build() copies out of the arenas, so the builder takes new appends while this one is written.
      const value = p.build(this.boot, this.recent.region(p.bytes) ?? undefined);
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
      chunkOps.push({ type: 'put', key: chunkKey(lane, entry.lastSeq), value });
      ops.push({ type: 'put', key: indexKey(lane, entry.lastSeq), value: encodeIndex(entry) });
      newBytes += value.length;
      newChunks.push({ lane, value, entry });
    }

    // Close to the reserve, free space is checked before every commit, not once a second.
    this.writtenSinceStatfs += newBytes;
    if (this.diskFree - 2 * this.writtenSinceStatfs < 2 * this.cfg.diskReserve) await this.checkDisk();
    // Evictions and quarantine are planned here and applied to memory only after the write succeeded.
    const evict = await this.planEvictions(newBytes);
    const evicting = new Set(evict.map((e) => `${e.lane}:${e.lastSeq}`));
    const quarantine = (await this.planQuarantine()).filter((q) => !evicting.has(`${q.entry.lane}:${q.entry.lastSeq}`));
    for (const e of [...evict, ...quarantine.map((q) => q.entry)]) {
      ops.push({ type: 'del', key: chunkKey(e.lane, e.lastSeq) });
      ops.push({ type: 'del', key: indexKey(e.lane, e.lastSeq) });
    }

    this.clock.poll();
    const meta = this.nextMeta(newChunks, evict, quarantine);
    if (this.clock.offset !== null) meta.clockFix[String(this.boot)] = this.clock.offset;
    ops.push({ type: 'put', key: META_KEY, value: Buffer.from(JSON.stringify(meta)) });
    const readerNames = [...this.dirtyReaders];
    this.dirtyReaders.clear();
    // Readers see the eviction's effect on their cursors in the same batch.
    const affected = new Set(readerNames);
    if (evict.length > 0 || quarantine.length > 0) for (const name of this.readers.keys()) affected.add(name);
    for (const name of this.droppedReaders) ops.push({ type: 'del', key: readerKey(name) });
    const dropped = [...this.droppedReaders];
    this.droppedReaders.clear();

    // Evictions move reader cursors, serialised into the same batch; if the write fails the events
    // are still there, so the cursors are put back (else readers would skip events never evicted).
    const restore = evict.length > 0 || quarantine.length > 0 ? [...this.readers.values()].map((r) => r.snapshot()) : [];
    for (const e of evict) for (const r of this.readers.values()) r.evicted(e.lane, e.firstSeq, e.lastSeq, e.count);
    for (const q of quarantine)
      for (const r of this.readers.values()) r.evicted(q.entry.lane, q.entry.firstSeq, q.entry.lastSeq, q.entry.count);
    for (const name of affected) {
      const r = this.readers.get(name);
      if (r) ops.push({ type: 'put', key: readerKey(name), value: Buffer.from(JSON.stringify(r)) });
    }

    let written = 0;
    ops.push(...chunkOps);
    for (const op of ops) if (op.type === 'put') written += op.key.length + op.value.length;
    try {
      const needsSync = count > 0 || evict.length > 0 || quarantine.length > 0;
      // The chunks are views on the recent ring. It hands out its next region only in the next
      // commit, after this write resolved, so they stay as built for as long as LevelDB needs them.
      await this.db.batch(ops, { sync: needsSync });
    } catch (err) {
      for (const undo of restore) undo();
      this.failWrite(err as Error, waiters, count);
      for (const name of readerNames) this.dirtyReaders.add(name);
      for (const name of dropped) this.droppedReaders.add(name);
      for (const f of doneCallbacks) f();
      return;
    }
    this.bytesWritten += written;
    if (evict.length > 0) this.roomWanted = 0;
    this.commits++;
    // Appends made while this batch was being written already advanced nextSeq (and refused) on
    // the live meta: keep those, or the next appends would reuse seqs and overwrite chunks.
    meta.nextSeq = Math.max(meta.nextSeq, this.meta.nextSeq);
    meta.refused = this.meta.refused;
    this.meta = meta;
    for (const e of evict) this.forgetChunk(e);
    for (const q of quarantine) this.forgetChunk(q.entry);
    for (const { lane, value, entry } of newChunks) {
      const q = this.oldest[lane];
      if (q.complete) {
        q.entries.push(entry);
        // Bound memory: past a few thousand entries the tail stays on disk and is reloaded when needed.
        if (q.entries.length > OLDEST_BATCH * 4) {
          q.entries.length = OLDEST_BATCH * 2;
          q.complete = false;
        }
      }
      this.recent.add(lane, entry.firstSeq, entry.lastSeq, value);
    }
    for (const lane of LANES) {
      const q = this.oldest[lane];
      if (q.entries.length === 0 && !q.complete) await this.refillOldest(lane);
    }
    if (meta.nextSeq + LEASE_STEP / 2 >= this.lease)
      await this.ensureLease(meta.nextSeq).catch((err) =>
        this.logger.error({ err: err.message }, 'seq lease not written'),
      );
    for (let i = 0; i < waiters.ok.length; i++) waiters.ok[i]({ firstSeq: waiters.first[i], lastSeq: waiters.last[i] });
    for (const f of doneCallbacks) f();
    for (const r of this.readers.values()) r.wake();
  }

  private nextMeta(
    newChunks: Array<{ lane: Lane; entry: IndexEntry }>,
    evict: IndexEntry[],
    quarantine: Array<{ entry: IndexEntry }>,
  ): Meta {
    const m = this.meta;
    const lanes = m.lanes.map((l) => ({ ...l })) as [LaneMeta, LaneMeta];
    for (const { lane, entry } of newChunks) {
      lanes[lane].events += entry.count;
      lanes[lane].bytes += entry.bytes;
      lanes[lane].lastSeq = entry.lastSeq;
    }
    const byReason = { ...m.evictedByReason };
    let evicted = m.evicted;
    for (const e of evict) {
      lanes[e.lane].events -= e.count;
      lanes[e.lane].bytes -= e.bytes;
      evicted += e.count;
      const reason = (e as IndexEntry & { reason?: string }).reason ?? 'capacity';
      byReason[reason] = (byReason[reason] ?? 0) + e.count;
    }
    let quarantined = m.quarantined;
    for (const { entry } of quarantine) {
      lanes[entry.lane].events -= entry.count;
      lanes[entry.lane].bytes -= entry.bytes;
      quarantined += entry.count;
    }
    return { ...m, lanes, evicted, evictedByReason: byReason, quarantined, clockFix: { ...m.clockFix } };
  }

  /** Chooses chunks to evict: retention first, then capacity (normal lane before the priority lane). */
  private async planEvictions(newBytes: number): Promise<Array<IndexEntry & { reason: string }>> {
    const plan: Array<IndexEntry & { reason: string }> = [];
    const taken = [0, 0];
    const peek = async (lane: Lane): Promise<IndexEntry | undefined> => {
      const q = this.oldest[lane];
      if (taken[lane] >= q.entries.length && !q.complete) await this.refillOldest(lane);
      return q.entries[taken[lane]];
    };
    // Retention (only with a synced clock: an unsynced one would make everything look ancient or new).
    const now = this.now();
    if (now - this.lastRetention >= 1000 && now > SYNCED_AFTER) {
      this.lastRetention = now;
      const horizon = now - this.cfg.retention;
      for (const lane of LANES) {
        for (;;) {
          const e = await peek(lane);
          if (!e || e.maxTs >= horizon) break;
          plan.push({ ...e, reason: 'retention' });
          taken[lane]++;
        }
      }
    }
    let bytes = this.bytes() + newBytes;
    for (const e of plan) bytes -= e.bytes;
    const reject = this.cfg.onFull === 'reject';
    // With reject, delivered chunks are released early (down to 90%), so producers refused while
    // the log was full are accepted again as soon as the uplinks catch up.
    const cap = reject ? Math.min(this.capacity() * 0.9, this.capacity() - this.roomWanted) : this.capacity();
    if (bytes <= cap) return plan;
    for (const lane of [LANE_NORMAL, LANE_PRIORITY] as const) {
      while (bytes > cap) {
        const e = await peek(lane);
        if (!e) break;
        // With onFull: reject, only chunks every reader has acknowledged may go (no loss).
        if (reject && !this.deliveredToAll(e)) break;
        plan.push({ ...e, reason: this.diskLimit < this.cfg.maxBytes && bytes - e.bytes < this.cfg.maxBytes ? 'disk' : 'capacity' });
        taken[lane]++;
        bytes -= e.bytes;
      }
    }
    if (bytes > cap && !reject && !this.warnedOversize) {
      this.warnedOversize = true;
      this.logger.warn(
        { bytes, cap },
        'one commit is larger than the whole buffer budget; it is kept until the next eviction',
      );
    }
    return plan;
  }

  private deliveredToAll(e: IndexEntry): boolean {
    if (this.readers.size === 0) return false;
    for (const r of this.readers.values())
      if (r.acks[e.lane].countIn(e.firstSeq, e.lastSeq) < e.lastSeq - e.firstSeq + 1) return false;
    return true;
  }

  private async planQuarantine(): Promise<Array<{ entry: IndexEntry; raw: Buffer | undefined }>> {
    if (this.toQuarantine.size === 0) return [];
    const out: Array<{ entry: IndexEntry; raw: Buffer | undefined }> = [];
    for (const { lane, lastSeq } of this.toQuarantine.values()) {
      const [raw, idx] = await this.db
        .getMany([chunkKey(lane, lastSeq), indexKey(lane, lastSeq)])
        .catch(() => [undefined, undefined] as Array<Buffer | undefined>);
      const entry = idx ? decodeIndex(indexKey(lane, lastSeq), idx) : null;
      out.push({
        entry: entry ?? { lane, firstSeq: lastSeq, lastSeq, count: 0, bytes: raw?.length ?? 0, minTs: 0, maxTs: 0 },
        raw,
      });
      if (raw && this.quarantineBytes + raw.length <= QUARANTINE_MAX_BYTES) {
        this.quarantineBytes += raw.length;
        await mkdir(this.paths.quarantine, { recursive: true });
        await writeFile(join(this.paths.quarantine, `chunk-${lane}-${lastSeq}.bin`), raw).catch(() => undefined);
      }
      this.logger.error({ lane, lastSeq, events: entry?.count }, 'damaged chunk quarantined; its events are skipped');
    }
    this.toQuarantine.clear();
    return out;
  }

  private failWrite(err: Error, waiters: Waiters, count: number): void {
    this.meta.refused += count;
    const e = new Error(`the ring log write failed: ${err.message}`);
    for (const fail of waiters.fail) fail(e);
    if (!this.failure) {
      this.failure = err;
      this.logger.error({ err: err.message }, 'ring log write failed; refusing appends until the database reopens');
      setTimeout(() => void this.reopenAfterFailure(), 1000).unref();
    }
  }

  /** LevelDB refuses all writes after a failed one: reopen it (recovering its log) and carry on. */
  private async reopenAfterFailure(): Promise<void> {
    if (this.closed) return;
    try {
      await this.compaction;
      await this.db.close();
      this.db = await this.openDb();
      const raw = await this.db.get(META_KEY);
      const onDisk = raw ? (JSON.parse(raw.toString('utf8')) as Meta) : emptyMeta();
      // The failed batch may or may not have reached the disk: trust the database, keep seq ahead.
      this.meta = { ...onDisk, nextSeq: Math.max(onDisk.nextSeq, this.meta.nextSeq), refused: this.meta.refused };
      for (const lane of LANES) {
        this.oldest[lane] = new OldestQueue(lane);
        await this.refillOldest(lane);
      }
      this.recent.clear();
      this.diskCache.clear();
      for (const name of this.readers.keys()) this.dirtyReaders.add(name);
      this.failure = null;
      this.logger.info('ring log database reopened; appends accepted again');
      this.schedule();
    } catch (err) {
      this.logger.error({ err: (err as Error).message }, 'ring log database still failing; retrying');
      setTimeout(() => void this.reopenAfterFailure(), 2000).unref();
    }
  }

  private async refillOldest(lane: Lane): Promise<void> {
    const q = this.oldest[lane];
    const last = q.entries[q.entries.length - 1];
    const gt = last ? indexKey(lane, last.lastSeq) : undefined;
    const opts = gt
      ? { gt, lt: indexEnd(lane), limit: OLDEST_BATCH }
      : { gte: indexKey(lane, 0), lt: indexEnd(lane), limit: OLDEST_BATCH };
    const got = await this.db.iterator(opts).all();
    for (const [k, v] of got) {
      const e = decodeIndex(k, v);
      if (e) q.entries.push(e);
    }
    if (got.length < OLDEST_BATCH) q.complete = true;
    // Bound memory: keep only the front when the whole lane fits in memory no longer matters.
    if (q.entries.length > OLDEST_BATCH * 4) {
      q.entries.length = OLDEST_BATCH * 2;
      q.complete = false;
    }
  }

  private forgetChunk(e: IndexEntry): void {
    const q = this.oldest[e.lane];
    const i = q.entries.findIndex((x) => x.lastSeq === e.lastSeq);
    if (i >= 0) q.entries.splice(i, 1);
    this.recent.forget(e.lane, e.lastSeq);
    this.diskCache.delete(`${e.lane}:${e.lastSeq}`);
  }

  // ---------------------------------------------------------------- maintenance

  /** Once a second: disk headroom, retention, clock sync; a write only when one of them needs it. */
  private maintain(): void {
    if (this.closed) return;
    void this.checkDisk().then(() => {
      if (this.closed) return;
      const now = this.now();
      const horizon = now - this.cfg.retention;
      const retentionDue =
        now > SYNCED_AFTER && this.oldest.some((q) => q.entries.length > 0 && q.entries[0].maxTs < horizon);
      const overCapacity = this.bytes() > this.capacity();
      if (retentionDue || overCapacity || this.roomWanted > 0 || this.clock.syncPending()) {
        this.maintenanceDue = true;
        this.schedule();
      }
    });
  }

  /**
   * Disk-headroom reserve: the log never fills its filesystem past `diskReserve` free. LevelDB needs
   * room beyond the data it holds (write-ahead log, compaction writes new tables before it deletes
   * the old; deleted chunks hold their space until compacted), so the log holds at most a third of
   * what it could use (its own files plus the free space over the reserve): a third live, a third of
   * deleted chunks before a compaction is forced, a third for the compaction's output. Above that it evicts (drop-oldest) or refuses (reject); below half the reserve
   * free, it refuses whatever the policy, since writing into a full disk would fail LevelDB itself.
   */
  private async checkDisk(): Promise<void> {
    let free: number;
    let own = 0;
    try {
      const s = await statfs(this.opts.dir);
      free = s.bavail * s.bsize;
      // With three budgets' worth free over the reserve the disk cannot limit the log: skip the
      // walk over LevelDB's files (a large log has a thousand of them).
      if (free - this.cfg.diskReserve >= 3 * Math.max(this.cfg.maxBytes, this.bytes())) {
        this.diskFree = free;
        this.writtenSinceStatfs = 0;
        this.diskLimit = Number.POSITIVE_INFINITY;
        this.diskCritical = false;
        this.diskLow = false;
        return;
      }
      for (const f of await readdir(this.paths.db)) own += (await stat(join(this.paths.db, f)).catch(() => ({ size: 0 }))).size;
    } catch {
      return; // statfs unsupported: maxBytes alone
    }
    this.diskFree = free;
    this.writtenSinceStatfs = 0;
    const reserve = this.cfg.diskReserve;
    const usable = own + free - reserve;
    const limit = Math.max(0, usable / 3);
    this.diskLimit = limit >= this.cfg.maxBytes ? Number.POSITIVE_INFINITY : limit;
    this.diskCritical = free < reserve / 2;
    const low = free < reserve || this.bytes() > limit;
    if (low && !this.diskLow) {
      this.logger.warn(
        { free, reserve, bytes: this.bytes(), limit: Math.round(limit) },
        this.cfg.onFull === 'reject'
          ? 'disk space limits the buffer (buffer.diskReserve): new events are refused until space frees'
          : 'disk space limits the buffer (buffer.diskReserve): the oldest events are evicted to keep the reserve free',
      );
    } else if (!low && this.diskLow) {
      this.logger.info({ free, reserve }, 'disk space is no longer limiting the buffer');
    }
    this.diskLow = low;
    // Evicted chunks free their space only once LevelDB compacts them, which a ring (puts at the
    // end, deletes at the front) does not trigger by itself on a small log: when the files hold
    // half the limit more than the live data, compact. Compaction rewrites the live data (up to a
    // third of the usable space) while appends go on, so it must start with that much room left.
    if (!this.compacting && this.diskLimit !== Number.POSITIVE_INFINITY && own > this.bytes() + limit / 2 + 2 * this.writeBufferSize) {
      this.compacting = true;
      this.compaction = this.db
        .compactRange(CHUNKS_START, INDEX_END)
        .catch((err) => this.logger.warn({ err: (err as Error).message }, 'compaction after evictions failed'))
        .finally(() => {
          this.compacting = false;
          this.compaction = null;
        });
    }
    if (this.bytes() > this.capacity()) {
      this.maintenanceDue = true;
      this.schedule();
    }
  }

  // ---------------------------------------------------------------- readers

  reader(name: string, options?: ReaderOptions): LogReader {
    let r = this.readers.get(name);
    if (r) {
      if (options) r.configure(options);
      return r;
    }
    r = new Reader(name, this, null, options);
    this.readers.set(name, r);
    this.droppedReaders.delete(name);
    return r;
  }

  async dropReader(name: string): Promise<void> {
    const r = this.readers.get(name);
    r?.wake(true);
    this.readers.delete(name);
    this.dirtyReaders.delete(name);
    this.droppedReaders.add(name);
    await this.flushMeta();
  }

  persistReader(reader: Reader): Promise<void> {
    if (this.closedDb || this.opts.readOnly || this.readers.get(reader.name) !== reader) return Promise.resolve();
    this.dirtyReaders.add(reader.name);
    return this.flushMeta();
  }

  /** Resolves after the next write batch (which carries cursors and drops). */
  private flushMeta(): Promise<void> {
    return new Promise((resolve) => {
      this.afterWrite.push(resolve);
      if (!this.writing) {
        if (this.timer) clearTimeout(this.timer);
        this.timer = null;
        void this.run();
      }
    });
  }

  laneLast(lane: Lane): number {
    return this.meta.lanes[lane].lastSeq;
  }

  laneSpan(lane: Lane): { events: number; firstSeq: number; lastSeq: number } {
    const m = this.meta.lanes[lane];
    const front = this.oldest[lane].entries[0];
    return { events: m.events, firstSeq: front ? front.firstSeq : m.lastSeq, lastSeq: m.lastSeq };
  }

  async chunkAfter(lane: Lane, p: number): Promise<ChunkRead | null> {
    const recent = this.recent.of(lane);
    if (recent.length > 0 && p + 1 >= recent[0].firstSeq) {
      const at = firstAfter(recent, p, (c) => c.lastSeq);
      if (at >= recent.length) return null;
      const rc = recent[at];
      // Written by this process moments ago and checked by its CRC on the way: decode once, share.
      rc.decoded ??= decodeChunk(rc.buf);
      return { chunk: rc.decoded };
    }
    if (this.closedDb) return null;
    let k: Buffer;
    let v: Buffer | undefined;
    try {
      const got = await this.db.iterator({ gte: chunkKey(lane, p + 1), lt: chunkEnd(lane), limit: 1 }).all();
      if (got.length === 0) return null;
      [k, v] = got[0];
    } catch (err) {
      // LevelDB itself could not read past p (a damaged block): find the next chunk through the
      // index, which lives in other blocks, and read that chunk alone.
      const next = await this.db
        .iterator({ gte: indexKey(lane, p + 1), lt: indexEnd(lane), limit: 1 })
        .all()
        .catch(() => []);
      if (next.length === 0) {
        this.logger.error(
          { lane, after: p, err: (err as Error).message },
          'ring log unreadable after this seq; skipping the rest of the lane',
        );
        return null;
      }
      k = chunkKey(lane, seqOfKey(next[0][0]));
      v = await this.db.get(k).catch(() => undefined);
    }
    const lastSeq = seqOfKey(k);
    const cacheKey = `${lane}:${lastSeq}`;
    const cached = this.diskCache.get(cacheKey);
    if (cached) return { chunk: cached };
    try {
      if (!v) throw new ChunkCorruptError('unreadable');
      const chunk = decodeChunk(v);
      if (chunk.lastSeq !== lastSeq)
        throw new ChunkCorruptError(`holds seqs up to ${chunk.lastSeq}, its key says ${lastSeq}`);
      this.diskCache.set(cacheKey, chunk);
      if (this.diskCache.size > DISK_CACHE_CHUNKS) this.diskCache.delete(this.diskCache.keys().next().value as string);
      return { chunk };
    } catch (err) {
      if (!(err instanceof ChunkCorruptError)) throw err;
      const idx = await this.db.get(indexKey(lane, lastSeq)).catch(() => undefined);
      const entry = idx ? decodeIndex(indexKey(lane, lastSeq), idx) : null;
      this.logger.error({ lane, lastSeq, err: err.message }, 'damaged chunk found: skipped and quarantined');
      if (!this.opts.readOnly) {
        this.toQuarantine.set(cacheKey, { lane, lastSeq });
        this.schedule();
      }
      return { chunk: null, corrupt: { lastSeq, count: entry?.count ?? 0 } };
    }
  }

  serve(chunk: DecodedChunk, i: number): StoredEvent {
    const ev = chunk.events[i];
    if (!chunk.unsynced?.[i]) return ev;
    const fix = this.meta.clockFix[String(chunk.boot)];
    if (fix === undefined) return ev;
    const ts = ev.ts + fix;
    return { ...ev, ts, json: correctJsonTs(ev.json, ev.ts, ts) };
  }

  // ---------------------------------------------------------------- inspection

  /** Stats of every known reader (persisted cursors included), for `sluice buffer stats`. */
  readerStats(): ReaderStats[] {
    return [...this.readers.values()].map((r) => r.stats());
  }

  /** Every event with fromSeq <= seq <= toSeq, both lanes merged in seq order (export). */
  async *scan(fromSeq = 0, toSeq = Number.MAX_SAFE_INTEGER): AsyncGenerator<StoredEvent> {
    const pos = [fromSeq - 1, fromSeq - 1];
    const buf: [StoredEvent[], StoredEvent[]] = [[], []];
    const done = [false, false];
    const fill = async (lane: Lane) => {
      while (buf[lane].length === 0 && !done[lane]) {
        const read = await this.chunkAfter(lane, pos[lane]);
        if (!read) {
          done[lane] = true;
          return;
        }
        if (read.corrupt) {
          pos[lane] = read.corrupt.lastSeq;
          continue;
        }
        const c = read.chunk!;
        for (let i = 0; i < c.events.length; i++)
          if (c.events[i].seq > pos[lane] && c.events[i].seq <= toSeq) buf[lane].push(this.serve(c, i));
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
      for await (const [, v] of this.db.iterator({ gte: chunkKey(lane, 0), lt: chunkEnd(lane), reverse: true })) {
        let c: DecodedChunk;
        try {
          c = decodeChunk(v);
        } catch {
          continue;
        }
        for (let i = c.events.length - 1; i >= 0 && got < n; i--, got++) out.push(this.serve(c, i));
        if (got >= n) break;
      }
    }
    return out.sort((x, y) => x.seq - y.seq).slice(-n);
  }

  // ---------------------------------------------------------------- stats and close

  stats(): BufferStats {
    const m = this.meta;
    const l0 = m.lanes[0];
    const l1 = m.lanes[1];
    const f0 = this.oldest[0].entries[0];
    const f1 = this.oldest[1].entries[0];
    const fronts = [f0, f1].filter((e): e is IndexEntry => e !== undefined);
    return {
      events: l0.events + l1.events,
      bytes: l0.bytes + l1.bytes,
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
      pendingBytes: this.pendingBytes,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.maintenanceTimer) clearInterval(this.maintenanceTimer);
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    // Drain: wait for the write in flight, then commit whatever is still pending.
    while (this.writing) await new Promise((r) => setTimeout(r, 2));
    if (this.pendingCount > 0 || this.needsWrite()) {
      this.writing = true;
      try {
        while ((this.pendingCount > 0 || this.needsWrite()) && !this.failure) await this.commitOnce();
      } finally {
        this.writing = false;
      }
    }
    for (const f of this.afterWrite.splice(0)) f();
    for (const r of this.readers.values()) r.wake(true);
    this.closedDb = true;
    await this.compaction;
    await this.db.close();
  }
}
