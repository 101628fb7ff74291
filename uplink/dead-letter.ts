/**
 * The dead-letter store: events an uplink's peer refused for good (a poison event, a 4xx), kept so an
 * operator can inspect or replay them, and so the stream never blocks on them.
 *
 * Guarantees:
 * - `add` resolves once the entries are written and fdatasynced: the runner advances the uplink's
 *   cursor past a rejected event only after that, so a rejected event is never silently lost.
 * - Bounded: `<dir>/<uplink>.ndjson` rolls over to `<uplink>.ndjson.1` (replacing the previous one)
 *   at half of `maxBytes`, so the pair never exceeds `maxBytes`. Entries dropped by a roll-over are
 *   counted in `discarded`.
 * - One NDJSON line per event: `{"uplink","at","reason","event":<the event as stored>}`.
 */
import { type FileHandle, mkdir, open, readFile, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { StoredEvent } from '../src/core/event.js';

export interface DeadLetterStats {
  /** Entries written since the store opened. */
  added: number;
  /** Entries in the current and rolled-over files. */
  held: number;
  bytes: number;
  maxBytes: number;
  /** Entries dropped by roll-over (the oldest, when the store is full). */
  discarded: number;
  path: string;
}

export class DeadLetterStore {
  private fh?: FileHandle;
  private bytes = 0;
  private lines = 0;
  private rolledLines = 0;
  private rolledBytes = 0;
  private added = 0;
  private discarded = 0;
  private chain: Promise<void> = Promise.resolve();
  readonly path: string;

  private constructor(
    dir: string,
    private readonly uplink: string,
    private readonly maxBytes: number,
  ) {
    this.path = join(dir, `${uplink}.ndjson`);
  }

  static async open(dir: string, uplink: string, maxBytes: number): Promise<DeadLetterStore> {
    await mkdir(dir, { recursive: true });
    const store = new DeadLetterStore(dir, uplink, maxBytes);
    [store.bytes, store.lines] = await countLines(store.path);
    [store.rolledBytes, store.rolledLines] = await countLines(`${store.path}.1`);
    store.fh = await open(store.path, 'a', 0o600);
    return store;
  }

  /** Appends the events with the peer's reason; serialised with other adds. */
  add(events: StoredEvent[], reason: string): Promise<void> {
    const run = this.chain.then(() => this.write(events, reason));
    this.chain = run.catch(() => {});
    return run;
  }

  private async write(events: StoredEvent[], reason: string): Promise<void> {
    if (!this.fh) throw new Error(`the dead-letter store ${this.path} is closed`);
    const at = Date.now();
    const head = `{"uplink":${JSON.stringify(this.uplink)},"at":${at},"reason":${JSON.stringify(reason.slice(0, 500))},"event":`;
    const text = events.map((e) => `${head}${e.json}}\n`).join('');
    const size = Buffer.byteLength(text);
    if (this.bytes > 0 && this.bytes + size > this.maxBytes / 2) await this.roll();
    await this.fh.write(text);
    await this.fh.datasync();
    this.bytes += size;
    this.lines += events.length;
    this.added += events.length;
  }

  private async roll(): Promise<void> {
    await this.fh?.close();
    this.discarded += this.rolledLines;
    await rename(this.path, `${this.path}.1`);
    this.rolledLines = this.lines;
    this.rolledBytes = this.bytes;
    this.lines = 0;
    this.bytes = 0;
    this.fh = await open(this.path, 'a', 0o600);
  }

  stats(): DeadLetterStats {
    return {
      added: this.added,
      held: this.lines + this.rolledLines,
      bytes: this.bytes + this.rolledBytes,
      maxBytes: this.maxBytes,
      discarded: this.discarded,
      path: this.path,
    };
  }

  async close(): Promise<void> {
    await this.chain;
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close();
  }
}

async function countLines(path: string): Promise<[number, number]> {
  try {
    const s = await stat(path);
    const text = await readFile(path);
    let n = 0;
    for (const b of text) if (b === 10) n++;
    return [s.size, n];
  } catch {
    return [0, 0];
  }
}
