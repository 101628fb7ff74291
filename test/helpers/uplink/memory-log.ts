/**
 * A tiny in-memory stand-in for the ring log's reader side, for the uplink tests only: ordered seqs,
 * a committed cursor, a read position, `wait`. It has no durability; the end-to-end tests use the real
 * ring log (buffer/).
 */
import type { LogReader, ReaderStats } from '../../../buffer/types.js';
import { type EventInput, type EventKind, encodeEvent, type StoredEvent } from '../../../src/core/event.js';

export class MemoryLog {
  readonly events: StoredEvent[] = [];
  private seq = 0;
  private waiters = new Set<() => void>();

  constructor(readonly gatewayId = 'gw-test') {}

  append(inputs: EventInput[]): { firstSeq: number; lastSeq: number } {
    const firstSeq = this.seq + 1;
    for (const e of inputs) {
      const seq = ++this.seq;
      const ts = e.ts ?? Date.now();
      this.events.push({
        seq,
        ts,
        kind: e.kind ?? 'reading',
        topic: e.topic,
        json: encodeEvent(this.gatewayId, seq, ts, e),
      });
    }
    for (const w of this.waiters) w();
    return { firstSeq, lastSeq: this.seq };
  }

  /** Appends `n` readings `{"i": k}` on `topic`. */
  appendN(n: number, topic = 'sensors/a/temp', kind: EventKind = 'reading'): void {
    this.append(Array.from({ length: n }, (_, i) => ({ source: 'test', topic, payload: { i }, kind })));
  }

  get lastSeq(): number {
    return this.seq;
  }

  reader(name: string): MemoryReader {
    return new MemoryReader(name, this, this.waiters);
  }
}

export class MemoryReader implements LogReader {
  committed = 0;
  private position = 0;
  commits: number[] = [];

  constructor(
    readonly name: string,
    private readonly log: MemoryLog,
    private readonly waiters: Set<() => void>,
  ) {}

  async next(maxEvents: number, maxBytes: number, filter?: (kind: EventKind, topic: string, json: string) => boolean) {
    const out: StoredEvent[] = [];
    let bytes = 0;
    for (const e of this.log.events) {
      if (e.seq <= this.position) continue;
      if (out.length >= maxEvents || (out.length > 0 && bytes + e.json.length > maxBytes)) break;
      this.position = e.seq;
      if (filter && !filter(e.kind, e.topic, e.json)) continue;
      out.push(e);
      bytes += e.json.length;
    }
    return out;
  }

  async commit(seq: number): Promise<void> {
    if (seq < this.committed) throw new Error(`commit went backwards: ${seq} < ${this.committed}`);
    this.committed = seq;
    this.commits.push(seq);
  }

  rewind(): void {
    this.position = this.committed;
  }

  wait(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (this.log.lastSeq > this.position || signal?.aborted) return resolve();
      const done = () => {
        this.waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      this.waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  stats(): ReaderStats {
    return {
      name: this.name,
      committedSeq: this.committed,
      pendingEvents: this.log.events.filter((e) => e.seq > this.committed).length,
      skipped: 0,
    };
  }
}
