/**
 * Who owns each persistent session (clean session = false), by client id.
 *
 * A persistent session holds what was queued for a client while it was away (commands to an
 * actuator, for one). MQTT lets anyone who connects with that client id resume it, or wipe it with
 * a clean connect. Here a session belongs to the user that created it: another user connecting
 * with that id is refused (CONNACK 5, not authorized), whether it asks to resume or to start
 * clean. Refusing is chosen over handing the other user a fresh session because a fresh session
 * under the same id would discard the owner's queue (aedes keeps one session per id): anyone could
 * then destroy a sensor's pending commands silently. The cost, that a user who squats an id first
 * locks its real owner out, is visible (counted and logged) and needs valid credentials.
 *
 * Guarantees:
 * - the owner of every persistent session is written to `file` (JSON, replaced atomically: write,
 *   fsync, rename) before the CONNACK that creates the session, so ownership survives a restart
 *   and a power cut (also when the sessions themselves do not: the next owner is still the same
 *   user, never whoever reconnects first);
 * - an owner connecting clean ends its session and its record;
 * - at most `max` sessions are recorded: a new persistent session past that is refused (CONNACK 3,
 *   counted), so persistent sessions cannot grow the gateway's memory without bound; only a record
 *   whose owner has not connected for `EXPIRE_MS` (30 days) makes room (its session is dropped
 *   through `onEvict`), so a flood of new sessions cannot push out a live device's record;
 * - when an owner was last seen is written at most once a day per session (no write per reconnect).
 * A file that cannot be read is logged and set aside (renamed `.bad`); sessions then start unowned.
 */
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Who a login is: a username, or '' for an anonymous client. */
export type Principal = string;

const EXPIRE_MS = 30 * 86_400_000;
const SEEN_WRITE_MS = 86_400_000;

interface OwnerRecord {
  owner: Principal;
  /** Last connect, ms since the epoch (as last written, and as known now). */
  seen: number;
  written: number;
}

export type SessionVerdict = 'ok' | 'owned_by_another' | 'full';

export class SessionsFullError extends Error {}

export class SessionOwners {
  /** Least recently seen first. */
  private owners = new Map<string, OwnerRecord>();
  private writing: Promise<void> = Promise.resolve();
  private scheduled?: Promise<void>;

  constructor(
    private readonly file: string | undefined,
    private readonly max: number,
    private readonly onLoadError: (err: Error) => void = () => {},
    private readonly onEvict: (clientId: string) => void = () => {},
  ) {}

  get size(): number {
    return this.owners.size;
  }

  async load(): Promise<void> {
    if (!this.file) return;
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.onLoadError(err as Error);
      return;
    }
    try {
      const parsed = JSON.parse(text) as { owners?: Record<string, { owner?: unknown; seen?: unknown }> };
      const records = Object.entries(parsed.owners ?? {})
        .filter(([, r]) => typeof r?.owner === 'string' && typeof r.seen === 'number')
        .map(([id, r]) => [id, { owner: r.owner as string, seen: r.seen as number, written: r.seen as number }] as const)
        .sort((a, b) => a[1].seen - b[1].seen);
      for (const [id, r] of records) this.owners.set(id, r);
    } catch (err) {
      this.onLoadError(err as Error);
      await rename(this.file, `${this.file}.bad`).catch(() => {});
    }
  }

  /** May `principal` connect as `clientId` (resuming or creating a session when `persistent`)? */
  check(clientId: string, principal: Principal, persistent: boolean, now = Date.now()): SessionVerdict {
    const r = this.owners.get(clientId);
    if (r !== undefined) return r.owner === principal ? 'ok' : 'owned_by_another';
    if (persistent && this.owners.size >= this.max && !this.expired(now)) return 'full';
    return 'ok';
  }

  /**
   * Records the connect that `check` allowed: a persistent one claims the id, a clean one by the
   * owner ends the session. Resolves when the record is on disk.
   */
  async connected(clientId: string, principal: Principal, persistent: boolean, now = Date.now()): Promise<void> {
    const r = this.owners.get(clientId);
    if (r && !persistent) {
      this.owners.delete(clientId);
    } else if (r) {
      this.owners.delete(clientId); // re-inserted last: least recently seen stays first
      this.owners.set(clientId, { ...r, seen: now });
      if (now - r.written < SEEN_WRITE_MS) return;
      this.owners.get(clientId)!.written = now;
    } else if (persistent) {
      if (this.owners.size >= this.max) {
        const oldest = this.expired(now);
        // Another CONNECT took the last place since check(): refused, never left unowned.
        if (!oldest) throw new SessionsFullError('broker.maxPersistentSessions reached');
        this.owners.delete(oldest);
        this.onEvict(oldest);
      }
      this.owners.set(clientId, { owner: principal, seen: now, written: now });
    } else return;
    await this.save();
  }

  /** The least recently seen record if its owner has not connected for EXPIRE_MS. */
  private expired(now: number): string | undefined {
    const first = this.owners.entries().next().value;
    return first && now - first[1].seen > EXPIRE_MS ? first[0] : undefined;
  }

  /**
   * Writes are serialised, and group-committed: changes made while a write runs share the next one,
   * which writes the latest map (a burst of new sessions costs two writes, not one each).
   */
  private save(): Promise<void> {
    const file = this.file;
    if (!file) return Promise.resolve();
    this.scheduled ??= this.writing.then(() => {
      this.scheduled = undefined;
      const records = Object.fromEntries([...this.owners].map(([id, r]) => [id, { owner: r.owner, seen: r.seen }]));
      return writeAtomically(file, JSON.stringify({ owners: records }));
    });
    const next = this.scheduled;
    this.writing = next.catch(() => {});
    return next;
  }
}

async function writeAtomically(file: string, text: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
}
