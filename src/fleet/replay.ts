/**
 * The replay store: command ids this gateway has accepted, remembered until they expire, persisted
 * (atomically, see atomic.ts) so a restart does not reopen the door to a replayed command.
 *
 * Bounded: at most `maxEntries` ids. When full, the entry issued earliest is forgotten and the
 * `floor` rises to its `issuedAt`; any command issued at or before the floor is then refused as
 * possibly replayed. Forgetting therefore never lets an old command back in, it only asks the
 * operator to re-sign a very old one. Entries whose `expiresAt` (plus the clock skew) has passed are
 * dropped: an expired command is refused by its expiry anyway. That holds only while the clock is
 * right, so the store also persists `lastKnownTime`, the latest set clock (year 2020 or later) it
 * pruned with: a gateway that boots with an unset clock (a Pi without RTC in 1970) checks expiry
 * against that instead, and a command whose id was pruned stays expired.
 *
 * A missing file starts an empty store. A damaged or unreadable one starts an empty store with the
 * floor at the moment it was found so (commands issued before then are refused), with a log line;
 * opening never throws, so the gateway always starts.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { writeFileAtomic } from './atomic.js';

/** Before 2020 the clock has not been set (as command.ts). */
const CLOCK_SET_AFTER = Date.UTC(2020, 0, 1);

interface Entry {
  id: string;
  issuedAt: number;
  expiresAt: number;
}

export class ReplayStore {
  private entries = new Map<string, Entry>();
  private floor = 0;
  private seenAt = 0;

  private constructor(
    private readonly file: string,
    private readonly maxEntries: number,
    private readonly skewMs: number,
  ) {}

  static async open(file: string, logger: Logger, maxEntries = 4096, skewMs = 300_000): Promise<ReplayStore> {
    const store = new ReplayStore(file, maxEntries, skewMs);
    let text: string | undefined;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') text = ''; // unreadable: treated as damaged
    }
    if (text !== undefined) {
      try {
        const doc = JSON.parse(text) as { floor: number; seenAt?: number; entries: [string, number, number][] };
        if (typeof doc.floor !== 'number' || !Array.isArray(doc.entries)) throw new Error('bad shape');
        store.floor = doc.floor;
        if (typeof doc.seenAt === 'number' && Number.isFinite(doc.seenAt)) store.seenAt = doc.seenAt;
        for (const [id, issuedAt, expiresAt] of doc.entries) {
          if (typeof id === 'string' && Number.isFinite(issuedAt) && Number.isFinite(expiresAt))
            store.entries.set(id, { id, issuedAt, expiresAt });
        }
      } catch {
        // Without the list nothing can tell a replay from a new command: refuse everything issued so far.
        store.floor = Date.now();
        logger.warn({ file }, 'fleet replay store is damaged; starting empty and refusing commands issued before now');
      }
    }
    store.enforceBound();
    return store;
  }

  /** Why `id` would be a replay, or undefined when it is new. */
  check(id: string, issuedAt: number): string | undefined {
    if (this.entries.has(id)) return `command id "${id}" was already received (replay)`;
    if (issuedAt <= this.floor) {
      return `command was issued at ${new Date(issuedAt).toISOString()}, before the oldest command this gateway still remembers (re-sign it)`;
    }
    return undefined;
  }

  /** Remembers an accepted command; resolves once that is durable. */
  async record(id: string, issuedAt: number, expiresAt: number, now = Date.now()): Promise<void> {
    if (now >= CLOCK_SET_AFTER) this.seenAt = Math.max(this.seenAt, now);
    for (const [k, e] of this.entries) if (e.expiresAt + this.skewMs < now) this.entries.delete(k);
    this.entries.set(id, { id, issuedAt, expiresAt });
    this.enforceBound();
    await mkdir(dirname(this.file), { recursive: true });
    const doc = { floor: this.floor, seenAt: this.seenAt, entries: [...this.entries.values()].map((e) => [e.id, e.issuedAt, e.expiresAt]) };
    await writeFileAtomic(this.file, JSON.stringify(doc));
  }

  /** The latest set clock this store pruned with (0 if none): no command expired before it is valid. */
  get lastKnownTime(): number {
    return this.seenAt;
  }

  get size(): number {
    return this.entries.size;
  }

  private enforceBound(): void {
    if (this.entries.size <= this.maxEntries) return;
    const byIssued = [...this.entries.values()].sort((a, b) => a.issuedAt - b.issuedAt);
    for (const e of byIssued.slice(0, this.entries.size - this.maxEntries)) {
      this.entries.delete(e.id);
      this.floor = Math.max(this.floor, e.issuedAt);
    }
  }
}
