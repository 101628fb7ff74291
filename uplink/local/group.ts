/**
 * One local consumer name: a ring-log reader `local:NAME` shared by every request that reads under
 * that name, the way a consumer group shares a partition's work.
 *
 * Guarantees:
 * - At least once: a batch is committed to the reader's persisted cursor only when acknowledged;
 *   after a restart every unacknowledged event is read again.
 * - Work sharing: concurrent requests are handed different batches (reads are serialised). A batch
 *   not acknowledged within `ackTimeout`, or whose stream closed, goes back to the front of the
 *   queue and is handed out again, whole and with the same batch id, to the next request.
 * - Bounded: at most `maxInFlight` unacknowledged batches (each ≤ `maxBatchBytes` of JSON) are held.
 */
import type { LogReader } from '../../buffer/types.js';
import type { StoredEvent } from '../../src/core/event.js';

export interface InFlight {
  id: string;
  firstSeq: number;
  lastSeq: number;
  events: StoredEvent[];
  /** When the batch goes back to the queue unless acknowledged. */
  deadline: number;
  /** The request (stream) holding it; null while it waits to be handed out again. */
  owner: symbol | null;
  /** Times handed out. */
  deliveries: number;
}

export type TakeResult = { batch: InFlight } | { batch: null; reason: 'empty' | 'full' };

export interface AckResult {
  /** Events acknowledged by this call. */
  acked: number;
  /** Batch ids named that are not in flight (already acknowledged, or from before a restart). */
  unknown: string[];
}

export interface GroupCounters {
  delivered: number;
  redelivered: number;
  acked: number;
}

export class ConsumerGroup {
  private readonly inflight = new Map<string, InFlight>();
  /** Batches to hand out again, oldest first. */
  private readonly requeued: InFlight[] = [];
  private readLock: Promise<unknown> = Promise.resolve();
  private changeWaiters = new Set<() => void>();
  private expiryTimer?: NodeJS.Timeout;
  readonly counters: GroupCounters = { delivered: 0, redelivered: 0, acked: 0 };
  lastActivity = Date.now();
  /** Requests (long polls, streams) currently reading under this name. */
  openRequests = 0;
  /** The highest seq ever handed to this consumer (its committed cursor until the first hand-out). */
  handedOutSeq: number;

  constructor(
    readonly name: string,
    readonly reader: LogReader,
    private readonly limits: { maxInFlight: number; ackTimeoutMs: number },
  ) {
    this.handedOutSeq = reader.stats().committedSeq;
  }

  get inFlightBatches(): number {
    return this.inflight.size;
  }

  /** The next batch for `owner`: one to hand out again first, else new events from the log. */
  async take(owner: symbol, maxEvents: number, maxBytes: number): Promise<TakeResult> {
    this.lastActivity = Date.now();
    this.expire();
    const again = this.requeued.shift();
    if (again) {
      this.handOut(again, owner);
      this.counters.redelivered += again.events.length;
      return { batch: again };
    }
    if (this.inflight.size >= this.limits.maxInFlight) return { batch: null, reason: 'full' };
    // One read at a time: two concurrent next() calls must not hand out the same events.
    const read = this.readLock.then(() => this.reader.next(maxEvents, maxBytes));
    this.readLock = read.catch(() => undefined);
    const events = await read;
    if (events.length === 0) return { batch: null, reason: 'empty' };
    const b: InFlight = {
      id: `${events[0].seq}-${events[events.length - 1].seq}`,
      firstSeq: events[0].seq,
      lastSeq: events[events.length - 1].seq,
      events,
      deadline: 0,
      owner: null,
      deliveries: 0,
    };
    this.inflight.set(b.id, b);
    this.handOut(b, owner);
    this.handedOutSeq = Math.max(this.handedOutSeq, b.lastSeq);
    this.counters.delivered += events.length;
    return { batch: b };
  }

  /** Acknowledges batches by id: each one's span is committed to the reader's cursor. */
  async ackBatches(ids: string[]): Promise<AckResult> {
    this.lastActivity = Date.now();
    const result: AckResult = { acked: 0, unknown: [] };
    for (const id of ids) {
      const b = this.inflight.get(id);
      if (!b) {
        result.unknown.push(id);
        continue;
      }
      this.forget(b);
      await this.reader.commit(b.lastSeq);
      result.acked += b.events.length;
    }
    this.counters.acked += result.acked;
    this.changed();
    return result;
  }

  /**
   * Acknowledges everything up to and including `seq`: every batch in flight that ends at or before
   * it, the acknowledged part of one that straddles it, and, when nothing is in flight (a reader that
   * kept its own position across a restart), the cursor itself. Never beyond what was handed out
   * (`handedOutSeq`): a RangeError, and nothing changes.
   */
  async ackUpTo(seq: number): Promise<AckResult> {
    this.lastActivity = Date.now();
    const result: AckResult = { acked: 0, unknown: [] };
    if (seq > this.handedOutSeq) throw new RangeError(`seq ${seq} was never handed to consumer "${this.name}"`);
    if (this.inflight.size === 0) {
      if (seq > this.reader.stats().committedSeq) await this.reader.commit(seq);
      this.changed();
      return result;
    }
    for (const b of [...this.inflight.values()].sort((x, y) => x.firstSeq - y.firstSeq)) {
      if (b.firstSeq > seq) continue;
      if (b.lastSeq <= seq) {
        this.forget(b);
        await this.reader.commit(b.lastSeq);
        result.acked += b.events.length;
        continue;
      }
      // Straddles seq: the reader commits the prefix; the rest stays in flight under a new id.
      const keep = b.events.filter((e) => e.seq > seq);
      result.acked += b.events.length - keep.length;
      await this.reader.commit(seq);
      this.inflight.delete(b.id);
      b.events = keep;
      b.firstSeq = keep[0].seq;
      b.id = `${b.firstSeq}-${b.lastSeq}`;
      this.inflight.set(b.id, b);
    }
    this.counters.acked += result.acked;
    this.changed();
    return result;
  }

  /** A stream closed: what it held goes back to the queue at once. */
  release(owner: symbol): void {
    let any = false;
    for (const b of this.inflight.values()) {
      if (b.owner === owner) {
        this.requeue(b);
        any = true;
      }
    }
    if (any) this.changed();
  }

  /** Resolves on the next ack, release or expiry (something a waiting request may now take), or abort. */
  changedOrAborted(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.changeWaiters.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.changeWaiters.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Unacknowledged batches a request (stream) holds. */
  countOwnedBy(owner: symbol): number {
    let n = 0;
    for (const b of this.inflight.values()) if (b.owner === owner) n++;
    return n;
  }

  /** Whether a batch waits to be handed out again. */
  get hasRequeued(): boolean {
    this.expire();
    return this.requeued.length > 0;
  }

  close(): void {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.changed();
  }

  private handOut(b: InFlight, owner: symbol): void {
    b.owner = owner;
    b.deliveries++;
    b.deadline = Date.now() + this.limits.ackTimeoutMs;
    this.scheduleExpiry();
  }

  private forget(b: InFlight): void {
    this.inflight.delete(b.id);
    const i = this.requeued.indexOf(b);
    if (i >= 0) this.requeued.splice(i, 1);
  }

  private requeue(b: InFlight): void {
    if (b.owner === null) return;
    b.owner = null;
    // Oldest first, so a batch that timed out does not wait behind newer ones.
    let i = this.requeued.findIndex((x) => x.firstSeq > b.firstSeq);
    if (i < 0) i = this.requeued.length;
    this.requeued.splice(i, 0, b);
  }

  /** Moves batches past their deadline back to the queue. */
  private expire(): boolean {
    const now = Date.now();
    let any = false;
    for (const b of this.inflight.values()) {
      if (b.owner !== null && b.deadline <= now) {
        this.requeue(b);
        any = true;
      }
    }
    return any;
  }

  private scheduleExpiry(): void {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    let next = Number.POSITIVE_INFINITY;
    for (const b of this.inflight.values()) if (b.owner !== null && b.deadline < next) next = b.deadline;
    if (next === Number.POSITIVE_INFINITY) return;
    this.expiryTimer = setTimeout(
      () => {
        if (this.expire()) this.changed();
        this.scheduleExpiry();
      },
      Math.max(10, next - Date.now()),
    );
    this.expiryTimer.unref();
  }

  private changed(): void {
    for (const w of [...this.changeWaiters]) w();
  }
}
