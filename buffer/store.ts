/**
 * The LevelDB handle and the files the log keeps (buffer/SPEC.md "Files"). The other parts read
 * and write through it; only recovery (recovery.ts) and a reopen after a failed write replace the
 * database it holds.
 */
import { existsSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';

export type DB = ClassicLevel<Buffer, Buffer>;

/** One record of a commit's batch: keys and values are bytes already. */
export type WriteOp = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };

/** What `write` uses of classic-level beyond its typings (store.test.ts fails if it goes). */
interface BatchImplementation {
  status: string;
  _batch(ops: WriteOp[], options: { sync: boolean }): Promise<void>;
}

export function paths(dir: string) {
  return {
    db: join(dir, 'ringlog'),
    lease: join(dir, 'ringlog.lease'),
    quarantine: join(dir, 'ringlog-quarantine'),
  };
}

/** The log cannot be opened for a reason that repairing would not fix (in use, permissions, no log). */
export class RingLogOpenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RingLogOpenError';
  }
}

export class Store {
  db!: DB;
  /** False before the first open and after close. */
  isOpen = false;
  /** LevelDB's memtable size (scaled to small filesystems); the disk guard counts it as headroom. */
  writeBufferSize = 4 * 1024 * 1024;
  readonly paths: ReturnType<typeof paths>;

  constructor(
    readonly dir: string,
    readonly readOnly: boolean,
  ) {
    this.paths = paths(dir);
  }

  /** Opens (or creates) the database; throws what LevelDB throws. */
  async open(): Promise<DB> {
    if (this.readOnly && !existsSync(join(this.paths.db, 'CURRENT')))
      throw new RingLogOpenError(`no ring log in ${this.dir} (expected ${this.paths.db})`);
    // Small write buffer and cache: RAM is scarce on a Pi, and chunks are written once, read rarely.
    // A 4 MiB memtable (LevelDB's own default, and what ran before the options reached LevelDB):
    // two of them (active + flushing) are the bulk of LevelDB's memory here. 8 MiB put the
    // gateway's RssAnon peak in the ingest benchmark at its 120 MB bound, for no throughput measured.
    // On a small filesystem the memtable (and so the write-ahead log) is scaled down to 1/32 of it.
    let writeBufferSize = 4 * 1024 * 1024;
    try {
      const s = await statfs(this.dir);
      writeBufferSize = Math.max(256 * 1024, Math.min(writeBufferSize, Math.floor((s.blocks * s.bsize) / 32)));
    } catch {
      // keep the default
    }
    this.writeBufferSize = writeBufferSize;
    // The options go to the constructor: it opens the database itself on the next microtask, and an
    // open() after that only waits for it, so options given to open() were silently ignored (LevelDB
    // ran with its 4 MiB memtable and 8 MiB cache whatever was asked).
    const db = new ClassicLevel<Buffer, Buffer>(this.paths.db, {
      keyEncoding: 'buffer',
      valueEncoding: 'buffer',
      createIfMissing: !this.readOnly,
      writeBufferSize,
      cacheSize: 2 * 1024 * 1024,
    });
    await db.open();
    this.db = db;
    this.isOpen = true;
    return db;
  }

  /**
   * Writes one commit's records atomically (fsynced when `sync`). The open database takes them
   * through classic-level's own `_batch`, the implementation that abstract-level's public `batch`
   * ends in: `batch` first clones every record into new objects and re-encodes them, for hooks,
   * events and sublevels this log does not use, and those clones live until the disk write returns.
   * At 10k QoS 1 publishes a second they were ~60% of what survived young-generation collections
   * (~18 MB in 8 s) and cost 2-3 extra full collections. A database that is not open goes through
   * `batch`, which fails with abstract-level's own error.
   */
  write(ops: WriteOp[], sync: boolean): Promise<void> {
    const impl = this.db as unknown as BatchImplementation;
    return impl.status === 'open' ? impl._batch(ops, { sync }) : this.db.batch(ops, { sync });
  }

  async close(): Promise<void> {
    this.isOpen = false;
    await this.db?.close().catch(() => undefined);
  }
}
