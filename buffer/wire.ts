/**
 * The wire boundary: where stored fields become the event envelope readers hand to uplinks
 * (`encodeEvent`, the contract's JSON). The chunk keeps fields only; the clock correction of
 * unsynced events is applied to `ts` before encoding, never patched into envelope text.
 *
 * The envelopes of one chunk are slices of one flat string: a chunk turned into envelopes is
 * cached and read by every uplink, so it should be a few objects, not dozens per event.
 */
import { encodeEvent, type StoredEvent } from '../src/core/event.js';
import type { DecodedChunk, DecodedEvent } from './chunk.js';

/** A chunk as readers see it: its events with their envelopes. */
export interface WireChunk {
  firstSeq: number;
  lastSeq: number;
  events: StoredEvent[];
}

/** Clock corrections (ms) by the boot id of the process that stamped unsynced events. */
export type ClockFixes = Readonly<Record<string, number>>;

/** The envelopes of a decoded chunk, `ts` of unsynced events corrected by `fixes` where known. */
export function wireChunk(c: DecodedChunk, fixes: ClockFixes = {}): WireChunk {
  const fix = c.anyUnsynced ? fixes[String(c.boot)] : undefined;
  const n = c.events.length;
  const events: StoredEvent[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const e = c.events[i];
    const ts = fix !== undefined && e.unsynced ? e.ts + fix : e.ts;
    events[i] = { seq: e.seq, ts, kind: e.kind, topic: e.topic, json: envelope(c.gatewayId, e, ts) };
  }
  // Each envelope is a chain of concatenations: flatten them into slices of one string.
  const flat = events.map((e) => e.json).join('');
  let at = 0;
  for (const e of events) {
    const end = at + e.json.length;
    e.json = flat.slice(at, end);
    at = end;
  }
  return { firstSeq: c.firstSeq, lastSeq: c.lastSeq, events };
}

function envelope(gatewayId: string, e: DecodedEvent, ts: number): string {
  if (e.json === undefined)
    return encodeEvent(
      gatewayId,
      e.seq,
      ts,
      {
        source: e.source,
        topic: e.topic,
        payload: undefined,
        payloadJson: e.payloadJson,
        kind: e.kind,
        deviceTs: e.deviceTs,
        userProperties: e.userProperties,
        contentType: e.contentType,
        payloadEncoding: e.payloadEncoding,
      },
      e.unsynced,
    );
  if (ts === e.ts) return e.json;
  // A version 2 chunk stored whole envelopes: a corrected one is rebuilt from the parsed envelope
  // (key order is kept; only old logs written before a clock sync take this path).
  const o = JSON.parse(e.json) as Record<string, unknown>;
  o.ts = ts;
  return JSON.stringify(o);
}

