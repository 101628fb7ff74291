/**
 * The stored-events fixture of the sink tests: events as the ring log hands them to an uplink
 * (`seq`, `ts`, `kind`, `topic` and the envelope JSON built by `encodeEvent`, as the reader side
 * builds it), and the batch the runner would make of them.
 */
import { encodeEvent, type StoredEvent } from '../../../src/core/event.js';
import { type Batch, batchIdOf } from '../../../uplink/sink.js';

export interface StoredEventsOptions {
  /** The first seq (1). */
  from?: number;
  /** The event's time (its seq). */
  ts?: (seq: number) => number;
  /** The topic (`sensors/s<seq % 3>/temp`). */
  topic?: (seq: number) => string;
  /** The payload (the seq itself). */
  payload?: (seq: number) => unknown;
  /** The payload as JSON text, taken as is (a producer's own text); overrides `payload`. */
  payloadJson?: (seq: number) => string;
  gatewayId?: string;
}

/** `n` readings from `mqtt` with consecutive seqs. */
export function storedEvents(n: number, opts: StoredEventsOptions = {}): StoredEvent[] {
  const { from = 1, ts = (seq) => seq, topic = (seq) => `sensors/s${seq % 3}/temp`, payload = (seq) => seq, gatewayId = 'gw-t' } = opts;
  return Array.from({ length: n }, (_, k) => {
    const seq = from + k;
    const input = { source: 'mqtt', topic: topic(seq), kind: 'reading' as const, ...(opts.payloadJson ? { payload: undefined, payloadJson: opts.payloadJson(seq) } : { payload: payload(seq) }) };
    return { seq, ts: ts(seq), kind: 'reading' as const, topic: input.topic, json: encodeEvent(gatewayId, seq, ts(seq), input) };
  });
}

/** The batch the runner sends for these events. */
export function batchOf(events: StoredEvent[], gateway = 'gw-t'): Batch {
  return { gateway, batchId: batchIdOf(events), events };
}
