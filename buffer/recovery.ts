/**
 * Opening and recovery (buffer/SPEC.md "Atomicity and recovery", "Damage"): open the database,
 * repair it or move it aside when it is damaged, and read back what the log needs to run: the meta
 * record, the reader cursors (and, through the eviction index, the first index entries per lane).
 * O(metadata): events are never scanned; only after a repair are per-lane totals rebuilt from the
 * index.
 */
import { mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import type { Logger } from 'pino';
import { decodeIndex, indexEnd, indexKey, LANES, META_KEY, READERS_END, READERS_START } from './keys.js';
import { emptyMeta, type LaneMeta, type Meta, parseMeta } from './meta.js';
import type { PersistedReader } from './reader.js';
import { type DB, RingLogOpenError, type Store } from './store.js';

/** Errors that say nothing about the database's health: never a reason to repair or quarantine it. */
export function notDamage(err: Error): string | null {
  const cause = (err as Error & { cause?: Error & { code?: string } }).cause;
  const text = `${err.message} ${cause?.message ?? ''}`;
  if (cause?.code === 'LEVEL_LOCKED' || /\block\b.*(held|temporarily unavailable)/i.test(text))
    return 'it is in use by another process (is the gateway running?)';
  if (/permission denied|EACCES|EPERM/i.test(text)) return 'permission denied';
  if (/read-only file system|EROFS/i.test(text)) return 'the file system is read-only';
  if (/no space left|ENOSPC/i.test(text)) return 'the disk is full';
  return null;
}

/** What the log starts from. */
export interface Recovered {
  meta: Meta;
  readers: Map<string, PersistedReader>;
  /** The database had no meta record (fresh, rebuilt or moved aside): nextSeq came from the lease. */
  fromLease: boolean;
}

/**
 * Opens the database and reads it back, repairing it or moving it aside when it is damaged.
 * `lease`: the seq floor for a log that lost its meta record.
 */
export async function recover(store: Store, lease: number, logger: Logger): Promise<Recovered> {
  const ro = store.readOnly;
  let recovered = false;
  let setAside = 0;
  try {
    await store.open();
  } catch (err) {
    if (err instanceof RingLogOpenError) throw err;
    const reason = notDamage(err as Error);
    if (reason) throw new RingLogOpenError(`cannot open the ring log in ${store.paths.db}: ${reason}`);
    if (ro) throw new RingLogOpenError(`cannot open the ring log in ${store.paths.db}: ${(err as Error).message}`);
    recovered = true;
    setAside += await repairOrSetAside(store, err as Error, logger);
  }
  try {
    return await load(store.db, lease, recovered, setAside, logger);
  } catch (err) {
    // Opened, but its metadata or index does not read back (a damaged table file): repair, and
    // if even that does not give a readable database, move it aside.
    if (ro) throw new RingLogOpenError(`cannot read the ring log in ${store.paths.db}: ${(err as Error).message}`);
    await store.close();
    setAside += await repairOrSetAside(store, err as Error, logger);
    try {
      return await load(store.db, lease, true, setAside, logger);
    } catch (err2) {
      await store.close();
      setAside += await moveAside(store, err2 as Error, logger);
      return load(store.db, lease, true, setAside, logger);
    }
  }
}

/** LevelDB's repair (it drops what it cannot read); if it still does not open, the database is moved aside. Returns how many were. */
async function repairOrSetAside(store: Store, first: Error, logger: Logger): Promise<number> {
  logger.error({ err: first.message }, 'ring log database damaged; repairing');
  try {
    await ClassicLevel.repair(store.paths.db);
    await store.open();
    logger.warn('ring log database repaired; unreadable records were dropped');
    return 0;
  } catch (err) {
    return moveAside(store, err as Error, logger);
  }
}

async function moveAside(store: Store, err: Error, logger: Logger): Promise<number> {
  await mkdir(store.paths.quarantine, { recursive: true });
  const aside = join(store.paths.quarantine, `db-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  await rename(store.paths.db, aside).catch(() => undefined);
  logger.error({ err: err.message, movedTo: aside }, 'ring log database cannot be repaired: moved aside, starting an empty log (seq continues)');
  await store.open();
  return 1;
}

/** Reads the meta record and reader cursors; throws when LevelDB cannot read them. */
async function load(db: DB, lease: number, recovered: boolean, setAside: number, logger: Logger): Promise<Recovered> {
  const raw = await db.get(META_KEY);
  let meta = raw ? parseMeta(raw) : null;
  if (raw && !meta) {
    logger.error('ring log metadata damaged: totals are rebuilt, seq continues above the lease');
    recovered = true;
  }
  const fromLease = recovered || !meta;
  meta ??= emptyMeta();
  meta.quarantined += setAside;
  if (fromLease) {
    // A database rebuilt or thrown away, or a fresh one: seq continues above anything made durable before.
    if (recovered) await recount(db, meta);
    if (lease > meta.nextSeq) {
      if (recovered || lease > 1)
        logger.warn(
          { lastKnownSeq: meta.nextSeq - 1, nextSeq: lease },
          'ring log seq continues at its lease: seqs between the last one found and the lease were never stored here or were lost with the damaged database',
        );
      meta.nextSeq = lease;
    }
  }
  const readers = new Map<string, PersistedReader>();
  for await (const [k, v] of db.iterator({ gte: READERS_START, lt: READERS_END })) {
    const name = k.subarray(1).toString('utf8');
    try {
      readers.set(name, JSON.parse(v.toString('utf8')) as PersistedReader);
    } catch {
      logger.warn({ reader: name }, 'unreadable reader cursor ignored: that reader starts from the oldest event');
    }
  }
  return { meta, readers, fromLease };
}

/** After a repair, per-lane totals are rebuilt from the index (the one case that walks it). */
async function recount(db: DB, meta: Meta): Promise<void> {
  for (const lane of LANES) {
    const m: LaneMeta = { events: 0, bytes: 0, lastSeq: meta.lanes[lane].lastSeq };
    for await (const [k, v] of db.iterator({ gte: indexKey(lane, 0), lt: indexEnd(lane) })) {
      const e = decodeIndex(k, v);
      if (!e) continue;
      m.events += e.count;
      m.bytes += e.bytes;
      if (e.lastSeq > m.lastSeq) m.lastSeq = e.lastSeq;
      if (e.lastSeq >= meta.nextSeq) meta.nextSeq = e.lastSeq + 1;
    }
    meta.lanes[lane] = m;
  }
}
