/**
 * The disk guard (buffer/SPEC.md "Capacity, retention, disk"): the log never fills its filesystem
 * past `diskReserve` free. LevelDB needs room beyond the data it holds (write-ahead log, compaction
 * writes new tables before it deletes the old; deleted chunks hold their space until compacted),
 * so the log holds at most a third of what it could use (its own files plus the free space over the
 * reserve): a third live, a third of deleted chunks before a compaction is forced, a third for the
 * compaction's output. Above that it evicts (drop-oldest) or refuses (reject); below half the
 * reserve free, it refuses whatever the policy, since writing into a full disk would fail LevelDB.
 *
 * The guard owns its state (limit, free space, low/critical) and the compaction it starts; the log
 * asks it before commits and reads the limit when it plans evictions.
 */
import { readdir, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { CHUNKS_START, INDEX_END } from './keys.js';
import type { Store } from './store.js';

export class DiskGuard {
  /** Bytes the disk lets the log hold (infinite when the disk does not limit it). */
  limit = Number.POSITIVE_INFINITY;
  /** Below half the reserve free: appends are refused whatever the policy. */
  critical = false;
  /** The reserve is reached or the log is over the disk's limit (logged once per episode). */
  low = false;
  private free = Number.POSITIVE_INFINITY;
  private writtenSinceCheck = 0;
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
    if (this.free - 2 * this.writtenSinceCheck < 2 * this.cfg.diskReserve) await this.check(held);
  }

  /** Measures free space and the log's files against the reserve; `held`: the log's live bytes. */
  async check(held: number): Promise<void> {
    let free: number;
    let own = 0;
    try {
      const s = await statfs(this.store.dir);
      free = s.bavail * s.bsize;
      // With three budgets' worth free over the reserve the disk cannot limit the log: skip the
      // walk over LevelDB's files (a large log has a thousand of them).
      if (free - this.cfg.diskReserve >= 3 * Math.max(this.cfg.maxBytes, held)) {
        this.free = free;
        this.writtenSinceCheck = 0;
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
    const reserve = this.cfg.diskReserve;
    const limit = Math.max(0, (own + free - reserve) / 3);
    this.limit = limit >= this.cfg.maxBytes ? Number.POSITIVE_INFINITY : limit;
    this.critical = free < reserve / 2;
    const low = free < reserve || held > limit;
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
    // half the limit more than the live data, compact. Compaction rewrites the live data (up to a
    // third of the usable space) while appends go on, so it must start with that much room left.
    if (!this.compaction && this.limit !== Number.POSITIVE_INFINITY && own > held + limit / 2 + 2 * this.store.writeBufferSize) {
      this.compaction = this.store.db
        .compactRange(CHUNKS_START, INDEX_END)
        .catch((err) => this.logger.warn({ err: (err as Error).message }, 'compaction after evictions failed'))
        .finally(() => {
          this.compaction = null;
        });
    }
  }
}
