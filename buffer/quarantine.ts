/**
 * Quarantine planning (buffer/SPEC.md "Damage"): chunks a reader found damaged wait here until the
 * next commit deletes them. Planning reads their raw bytes and index entries and keeps the bytes in
 * `ringlog-quarantine/` (up to 64 MiB); the deletion itself is part of the commit's batch.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { chunkKey, decodeIndex, type IndexEntry, indexKey, type Lane } from './keys.js';
import type { Store } from './store.js';

const QUARANTINE_MAX_BYTES = 64 * 1024 * 1024;

export class Quarantine {
  private readonly waiting = new Map<string, { lane: Lane; lastSeq: number }>();
  private keptBytes = 0;

  constructor(
    private readonly store: Store,
    private readonly logger: Logger,
  ) {}

  get size(): number {
    return this.waiting.size;
  }

  /** A chunk found damaged: to be deleted by the next commit. */
  add(lane: Lane, lastSeq: number): void {
    this.waiting.set(`${lane}:${lastSeq}`, { lane, lastSeq });
  }

  /** The chunks to delete now (their raw bytes already set aside), except those in `skip` ("lane:lastSeq"). */
  async plan(skip: ReadonlySet<string>): Promise<IndexEntry[]> {
    if (this.waiting.size === 0) return [];
    const out: IndexEntry[] = [];
    for (const [key, { lane, lastSeq }] of this.waiting) {
      if (skip.has(key)) continue;
      const [raw, idx] = await this.store.db
        .getMany([chunkKey(lane, lastSeq), indexKey(lane, lastSeq)])
        .catch(() => [undefined, undefined] as Array<Buffer | undefined>);
      const entry = idx ? decodeIndex(indexKey(lane, lastSeq), idx) : null;
      out.push(entry ?? { lane, firstSeq: lastSeq, lastSeq, count: 0, bytes: raw?.length ?? 0, minTs: 0, maxTs: 0 });
      if (raw && this.keptBytes + raw.length <= QUARANTINE_MAX_BYTES) {
        this.keptBytes += raw.length;
        await mkdir(this.store.paths.quarantine, { recursive: true });
        await writeFile(join(this.store.paths.quarantine, `chunk-${lane}-${lastSeq}.bin`), raw).catch(() => undefined);
      }
      this.logger.error({ lane, lastSeq, events: entry?.count }, 'damaged chunk quarantined; its events are skipped');
    }
    this.waiting.clear();
    return out;
  }
}
