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
 *   counted), so persistent sessions cannot grow the gateway's memory without bound.
 * A file that cannot be read is logged and set aside (renamed `.bad`); sessions then start unowned.
 */
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Who a login is: a username, or '' for an anonymous client. */
export type Principal = string;

export type SessionVerdict = 'ok' | 'owned_by_another' | 'full';

export class SessionOwners {
  private owners = new Map<string, Principal>();
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly file: string | undefined,
    private readonly max: number,
    private readonly onLoadError: (err: Error) => void = () => {},
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
      const parsed = JSON.parse(text) as { owners?: Record<string, unknown> };
      for (const [id, owner] of Object.entries(parsed.owners ?? {})) {
        if (typeof owner === 'string') this.owners.set(id, owner);
      }
    } catch (err) {
      this.onLoadError(err as Error);
      await rename(this.file, `${this.file}.bad`).catch(() => {});
    }
  }

  /** May `principal` connect as `clientId` (resuming or creating a session when `persistent`)? */
  check(clientId: string, principal: Principal, persistent: boolean): SessionVerdict {
    const owner = this.owners.get(clientId);
    if (owner !== undefined) return owner === principal ? 'ok' : 'owned_by_another';
    if (persistent && this.owners.size >= this.max) return 'full';
    return 'ok';
  }

  /**
   * Records the connect that `check` allowed: a persistent one claims the id, a clean one by the
   * owner ends the session. Resolves when the record is on disk.
   */
  async connected(clientId: string, principal: Principal, persistent: boolean): Promise<void> {
    const owner = this.owners.get(clientId);
    if (persistent && owner === undefined) this.owners.set(clientId, principal);
    else if (!persistent && owner !== undefined) this.owners.delete(clientId);
    else return;
    await this.save();
  }

  /** Writes are serialised, and each one writes the latest map. */
  private save(): Promise<void> {
    const file = this.file;
    if (!file) return Promise.resolve();
    const next = this.writing.then(() => writeAtomically(file, JSON.stringify({ owners: Object.fromEntries(this.owners) })));
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
