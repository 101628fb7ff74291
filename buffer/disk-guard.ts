/**
 * The disk guard (buffer/SPEC.md "Capacity, retention, disk"): the log never fills its filesystem
 * past `diskReserve` free. LevelDB needs room beyond the data it holds (write-ahead logs of two
 * memtables, compaction writes new tables before it deletes the old; deleted chunks hold their
 * space until compacted), so the log holds at most a third of what it could use (its own files plus
 * the free space over the reserve, less the memtables): a third live, a third of deleted chunks
 * before a compaction is forced, a third for the compaction's output. Above that it evicts
 * (drop-oldest) or refuses (reject).
 *
 * Whatever the policy, appends are refused while the free space over half the reserve could not
 * take a compaction's output (up to all the live data) and the memtables. Appends go on during a
 * compaction, and what they evict frees nothing until the next one: under a steady stream the
 * deleted chunks outgrow their third while a compaction runs (measured: 13 MiB of them against a
 * 9 MiB third on a 32 MiB disk, and then 0 bytes free). Only refusing bounds them; it also keeps
 * LevelDB from meeting a full disk in a compaction, which it does not survive (leveldb 1.20 in
 * classic-level 3: a write error during a manual compaction ends the process with SIGSEGV).
 *
 * The guard owns its state (limit, free space, low/critical) and the compaction it starts; the log
 * asks it before commits and reads the limit when it plans evictions.
 */
import { readdir, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { CHUNKS_START, INDEX_END } from './keys.js';
import type { Store } from './store.js';

/** The log holds at most 1/SHARES of the space it could use: live, deleted, compaction output. */
const SHARES = 3;

export class DiskGuard {
  /** Bytes the disk lets the log hold (infinite when the disk does not limit it). */
  limit = Number.POSITIVE_INFINITY;
  /** No room over half the reserve for a compaction's output: appends are refused whatever the policy. */
  critical = false;
  /** The reserve is reached or the log is over the disk's limit (logged once per episode). */
  low = false;
  private free = Number.POSITIVE_INFINITY;
  private writtenSinceCheck = 0;
  /** Below this much free space (less what was written since), commits measure again first. */
  private recheckBelow = 0;
  private lastHeld = 0;
  /** The compaction in flight: closing the database waits for it. */
  compaction: Promise<void> | null = null;

  constructor(
    private readonly store: Store,
    private readonly cfg: { maxBytes: number; diskReserve: number; onFull: 'drop-oldest' | 'reject' },
    private readonly logger: Logger,
  ) {}

  /** Close to the reserve, free space is checked before every commit of `bytes`, not once a second. */
  async beforeWrite(bytes: number, held: number): Promise<void> {
    this.writtenSinceCheck += bytes;
    if (this.free - 2 * this.writtenSinceCheck < this.recheckBelow) await this.check(held);
  }

  /** Measures free space and the log's files against the reserve; `held`: the log's live bytes. */
  async check(held: number): Promise<void> {
    this.lastHeld = held;
    const reserve = this.cfg.diskReserve;
    // LevelDB writes besides the chunks: the write-ahead logs of the active memtable and of the one
    // being flushed, each up to the memtable size.
    const memtables = 2 * this.store.writeBufferSize;
    let free: number;
    let own = 0;
    try {
      const s = await statfs(this.store.dir);
      free = s.bavail * s.bsize;
      // With SHARES budgets' worth free over the reserve the disk cannot limit the log: skip the
      // walk over LevelDB's files (a large log has a thousand of them).
      const budget = Math.max(this.cfg.maxBytes, held);
      if (free - reserve - memtables >= SHARES * budget) {
        this.free = free;
        this.writtenSinceCheck = 0;
        this.recheckBelow = 2 * reserve + budget + memtables;
        this.limit = Number.POSITIVE_INFINITY;
        this.critical = false;
        this.low = false;
        return;
      }
      for (const f of await readdir(this.store.paths.db)) own += (await stat(join(this.store.paths.db, f)).catch(() => ({ size: 0 }))).size;
    } catch {
      return; // statfs unsupported: maxBytes alone
    }
    this.free = free;
    this.writtenSinceCheck = 0;
    const share = Math.max(0, (own + free - reserve - memtables) / SHARES);
    // A compaction writes its output before it deletes its input: up to all the live data, which is
    // at most the log's share (or what it holds, when more). That room stays free over half the
    // reserve; without it appends are refused (a compaction that meets a full disk fails LevelDB).
    const room = Math.max(held, Math.min(share, this.cfg.maxBytes)) + memtables;
    this.recheckBelow = 2 * reserve + room;
    // Dead space that cannot be compacted for want of room: hold no more than a compaction can
    // rewrite in the space free now (drop-oldest evicts down to it), so the next one fits.
    const limit = Math.max(0, Math.min(share, free - memtables));
    this.limit = limit >= this.cfg.maxBytes ? Number.POSITIVE_INFINITY : limit;
    this.critical = free < reserve / 2 + room;
    const low = free < reserve || held > limit || this.critical;
    if (low && !this.low) {
      this.logger.warn(
        { free, reserve, bytes: held, limit: Math.round(limit) },
        this.cfg.onFull === 'reject'
          ? 'disk space limits the buffer (buffer.diskReserve): new events are refused until space frees'
          : 'disk space limits the buffer (buffer.diskReserve): the oldest events are evicted to keep the reserve free',
      );
    } else if (!low && this.low) {
      this.logger.info({ free, reserve }, 'disk space is no longer limiting the buffer');
    }
    this.low = low;
    // Evicted chunks free their space only once LevelDB compacts them, which a ring (puts at the
    // end, deletes at the front) does not trigger by itself on a small log: when the files hold
    // half the share more than the live data, compact, once its output (the live data) and a
    // memtable fit in the free space.
    const dead = own - held;
    if (!this.compaction && this.store.isOpen && this.limit !== Number.POSITIVE_INFINITY && dead > share / 2 + memtables && free >= held + memtables) {
      this.compaction = this.store.db
        .compactRange(CHUNKS_START, INDEX_END)
        .catch((err) => this.logger.warn({ err: (err as Error).message }, 'compaction after evictions failed'))
        .finally(() => {
          this.compaction = null;
          // Its input is gone now: measure at once, not at the next commit or tick (appends may be refused).
          if (this.store.isOpen) void this.check(this.lastHeld);
        });
    }
  }
}
