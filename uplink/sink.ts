/**
 * The Sink contract: one per protocol, speaking only that protocol. Batching, cursors, retries,
 * backoff and filtering live in the shared runner (uplink/runner.ts), so every sink gets the same
 * delivery guarantees.
 *
 * `send(batch)` resolves with what the remote side did with each event, by index into
 * `batch.events`: `accepted` (acknowledged: the cursor may pass them), `rejected` (the remote
 * refused them for good: dead-lettered and counted, never retried, never blocking the stream) and
 * `retry` (send again later, with backoff; `retryAfterMs` when the peer said how long). An event
 * index may appear in one list only; an index in none is retried. A thrown error retries the whole
 * batch and is reported as the uplink's `lastError`.
 */
import type { Logger } from 'pino';
import type { StoredEvent } from '../src/core/event.js';

/** What every sink is built with (one context for all types; the registry passes it). */
export interface SinkContext {
  gatewayId: string;
  logger: Logger;
  /** The gateway's data directory (sinks that keep local state put it under here; the gateway always gives it). */
  dataDir?: string;
}

export interface Batch {
  gateway: string;
  /** `<firstSeq>-<lastSeq>`: the idempotency key. */
  batchId: string;
  events: StoredEvent[];
}

export interface SendResult {
  accepted: number[];
  rejected: number[];
  retry: number[];
  retryAfterMs?: number;
  /** Why events were rejected or retried (shown as the uplink's last error). */
  error?: string;
  /** Bytes put on the wire for this batch (after compression); the bandwidth cap counts them. */
  bytes?: number;
}

export interface SinkHealth {
  connected: boolean;
  lastError?: string;
}

export interface Sink {
  start(): Promise<void>;
  stop(): Promise<void>;
  health(): SinkHealth;
  send(batch: Batch): Promise<SendResult>;
}

/** All of a batch accepted: the common case. */
export function allAccepted(batch: Batch): SendResult {
  return { accepted: batch.events.map((_, i) => i), rejected: [], retry: [] };
}

/** The contract batch document `{"gateway", "batchId", "events": [...]}`, built from stored JSON without re-encoding. */
export function batchDocument(batch: Batch): string {
  let s = `{"gateway":${JSON.stringify(batch.gateway)},"batchId":"${batch.batchId}","events":[`;
  for (let i = 0; i < batch.events.length; i++) s += (i ? ',' : '') + batch.events[i].json;
  return `${s}]}`;
}

export function batchIdOf(events: StoredEvent[]): string {
  return `${events[0].seq}-${events[events.length - 1].seq}`;
}

/**
 * The sink of an uplink configured with `enabled: false`: its runner keeps the cursor and reports
 * the backlog in status, and nothing of the protocol is loaded or connected.
 */
export const disabledSink: Sink = {
  start: async () => {},
  stop: async () => {},
  send: async () => ({ accepted: [], rejected: [], retry: [], error: 'the uplink is disabled' }),
  health: () => ({ connected: false }),
};
