/**
 * The RingLog contract: the gateway's one durable point (shared/ARCHITECTURE.md principle 1).
 *
 * - `append(events)` assigns each event the next `seq` (strictly increasing, never reused, across
 *   restarts) and resolves only once the events are durable on disk (fsynced; group commit: many
 *   concurrent appends share one fsync). A rejection means nothing of that call was accepted.
 * - The log is bounded by `maxBytes` (and `retention`): with `drop-oldest` the oldest events are
 *   evicted (anomalies last) and every eviction is counted; with `reject`, `append` rejects with a
 *   `BufferFullError` until room frees.
 * - Readers never delete: each named reader has a persisted cursor (the highest seq it committed);
 *   `next` hands out events after the reader's read position, `commit` advances the cursor once the
 *   remote side acknowledged them. After a restart a reader resumes after its committed cursor, so
 *   delivery is at least once. A reader whose events were evicted before it read them skips ahead
 *   and the skipped count is recorded.
 */
import type { EventInput, EventKind, StoredEvent } from '../src/core/event.js';

export interface AppendResult {
  firstSeq: number;
  lastSeq: number;
}

export interface BufferStats {
  events: number;
  bytes: number;
  maxBytes: number;
  /** Events evicted by the capacity or retention policy since the log was created. */
  evicted: number;
  evictedByReason: Record<string, number>;
  /** Events or chunks found damaged and moved aside. */
  quarantined: number;
  /** Appends refused (onFull: reject, disk full). */
  refused: number;
  /** `ts` of the oldest event held, or null when empty. */
  oldestTs: number | null;
  firstSeq: number;
  lastSeq: number;
  /** Bytes handed to the storage engine since the process started (for write amplification). */
  bytesWritten: number;
  /** Write batches since the process started (group commit: far fewer than appends). */
  commits?: number;
  /** Write batches fsynced since the process started (bounded by buffer.maxFsyncsPerSecond when it is set). */
  fsyncs?: number;
  /**
   * Encoded bytes accepted but not yet durable. A producer that can pause (the broker: stop reading
   * sockets) should do so while this is high; past 8 MiB appends are refused.
   */
  pendingBytes?: number;
}

export interface ReaderStats {
  name: string;
  committedSeq: number;
  /** Events after the committed cursor that are still in the log. */
  pendingEvents: number;
  /** Events this reader never saw because the log evicted them first. */
  skipped: number;
}

export interface LogReader {
  readonly name: string;
  /**
   * Up to `maxEvents` events (and about `maxBytes` of JSON) after the read position, oldest first,
   * optionally only those a filter keeps (filtered-out events still advance the position); the filter
   * sees the kind, the topic and the envelope's JSON (for a filter on the payload).
   * Resolves with an empty array when there is nothing to read; use `wait` to sleep until there is.
   */
  next(
    maxEvents: number,
    maxBytes: number,
    filter?: (kind: EventKind, topic: string, json: string) => boolean,
  ): Promise<StoredEvent[]>;
  /**
   * Acknowledges the hand-out of `next` whose last event is `seq` (its whole span, events a filter
   * passed over included); a `seq` inside a hand-out acknowledges that prefix of it; a `seq` that
   * names no hand-out acknowledges everything up to it. Hand-outs may be acknowledged in any order
   * (live-first readers do). Persisted with the log's next write (not necessarily fsynced).
   */
  commit(seq: number): Promise<void>;
  /** Moves the read position back to just after the committed cursor (after a failed send). */
  rewind(): void;
  /** Resolves when events after the read position exist, or when `signal` aborts. */
  wait(signal?: AbortSignal): Promise<void>;
  stats(): ReaderStats;
}

export interface ReaderOptions {
  /**
   * Live first: events appended after the reader started go out before the older backlog, which
   * still gets `backlogShare` (0..1) of what the reader hands out so it drains. Anomalies (the
   * priority lane) always go first. Delivery stays at least once; order holds within each lane.
   */
  liveFirst?: boolean;
  backlogShare?: number;
}

export interface RingLog {
  append(events: EventInput[]): Promise<AppendResult>;
  reader(name: string, options?: ReaderOptions): LogReader;
  /** Removes a reader's cursor (an uplink removed from the config). */
  dropReader(name: string): Promise<void>;
  /** Every known reader, persisted cursors included. */
  readerStats(): ReaderStats[];
  stats(): BufferStats;
  /** True while the log is open and writable. */
  readonly healthy: boolean;
  close(): Promise<void>;
}

/**
 * The log cannot take the events now, but will: it is full (`onFull: reject`), the disk reserve is
 * reached, or writing is behind (`reason: 'write_behind'`). Producers that can wait (a QoS 1
 * publish) retry later instead of failing.
 */
export class BufferFullError extends Error {
  readonly code = 'BUFFER_FULL';
  constructor(
    message = 'the ring log is full (buffer.onFull: reject); the event was not accepted',
    readonly reason: 'buffer_full' | 'write_behind' = 'buffer_full',
  ) {
    super(message);
    this.name = 'BufferFullError';
  }
}
