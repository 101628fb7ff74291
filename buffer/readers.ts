/**
 * The log's named readers and what a commit writes for them: the cursors that moved, the cursors of
 * readers removed from the config, and the effect of evictions on every cursor (skipped events).
 * `plan` returns that part of a commit and how to take it back if the write fails.
 */
import type { IndexEntry } from './keys.js';
import { type PersistedReader, Reader, type ReaderHost } from './reader.js';
import type { ReaderOptions, ReaderStats } from './types.js';

export interface CursorPlan {
  cursors: Array<{ name: string; value: string }>;
  dropped: string[];
  /** The write failed: the cursors are put back and written with the next commit. */
  undo(): void;
}

export class ReaderSet {
  private readonly all = new Map<string, Reader>();
  private readonly dirty = new Set<string>();
  private readonly dropped = new Set<string>();

  constructor(private readonly host: ReaderHost) {}

  /** Readers known from the database: live from the start, so evictions count their skips. */
  restore(saved: ReadonlyMap<string, PersistedReader>): void {
    for (const [name, s] of saved) this.all.set(name, new Reader(name, this.host, s));
  }

  get size(): number {
    return this.all.size;
  }

  get(name: string, options?: ReaderOptions): Reader {
    let r = this.all.get(name);
    if (r) {
      if (options) r.configure(options);
      return r;
    }
    r = new Reader(name, this.host, null, options);
    this.all.set(name, r);
    this.dropped.delete(name);
    return r;
  }

  drop(name: string): void {
    this.all.get(name)?.wake(true);
    this.all.delete(name);
    this.dirty.delete(name);
    this.dropped.add(name);
  }

  /** Marks a reader's cursor for the next write; false when it is not (or no longer) this log's reader. */
  touch(reader: Reader): boolean {
    if (this.all.get(reader.name) !== reader) return false;
    this.dirty.add(reader.name);
    return true;
  }

  /** Every cursor is written with the next commit (after the database was reopened). */
  touchAll(): void {
    for (const name of this.all.keys()) this.dirty.add(name);
  }

  get needsWrite(): boolean {
    return this.dirty.size > 0 || this.dropped.size > 0;
  }

  /** Whether every reader acknowledged the whole chunk (reject may evict only those). */
  deliveredToAll(e: IndexEntry): boolean {
    if (this.all.size === 0) return false;
    for (const r of this.all.values()) if (r.acks[e.lane].countIn(e.firstSeq, e.lastSeq) < e.lastSeq - e.firstSeq + 1) return false;
    return true;
  }

  /** The cursor part of a commit that removes `removing` (evicted or quarantined chunks). */
  plan(removing: readonly IndexEntry[]): CursorPlan {
    const names = [...this.dirty];
    this.dirty.clear();
    const dropped = [...this.dropped];
    this.dropped.clear();
    // Readers see the eviction's effect on their cursors in the same batch; if the write fails the
    // events are still there, so the cursors are put back (else readers would skip events never evicted).
    const affected = removing.length > 0 ? [...this.all.keys()] : names;
    const snapshots = removing.length > 0 ? [...this.all.values()].map((r) => r.snapshot()) : [];
    for (const e of removing) for (const r of this.all.values()) r.evicted(e.lane, e.firstSeq, e.lastSeq, e.count);
    const cursors = affected.flatMap((name) => {
      const r = this.all.get(name);
      return r ? [{ name, value: JSON.stringify(r) }] : [];
    });
    return {
      cursors,
      dropped,
      undo: () => {
        for (const s of snapshots) s();
        for (const name of names) this.dirty.add(name);
        for (const name of dropped) this.dropped.add(name);
      },
    };
  }

  wake(force = false): void {
    for (const r of this.all.values()) r.wake(force);
  }

  stats(): ReaderStats[] {
    return [...this.all.values()].map((r) => r.stats());
  }
}
