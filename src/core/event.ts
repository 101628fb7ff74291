import { isUtf8 } from 'node:buffer';

/**
 * The event envelope (README "Guarantees" and uplink/SPEC.md). Every reading, anomaly, aggregate
 * and status becomes one event; the ring log assigns `seq` (strictly increasing per gateway, never
 * reused) and stores the event's fields; the reader side builds this envelope (`encodeEvent`) once
 * per chunk it serves, shared by every reader, so uplinks forward that JSON without re-encoding it.
 */
/**
 * `audit`: a record of who asked for what (a write to a device); `alarm`: a rule's pattern matched; both
 * go in the priority lane like anomalies. `derived`: a rule's computed event.
 */
export type EventKind = 'reading' | 'anomaly' | 'aggregate' | 'status' | 'audit' | 'alarm' | 'derived';

/** What a producer (broker, driver, detector) hands to the ring log. */
export interface EventInput {
  source: string;
  topic: string;
  payload: unknown;
  kind?: EventKind;
  /** Epoch ms when the gateway accepted it; the ring log stamps it when absent. */
  ts?: number;
  /** The device's own timestamp, where it gives one (NMEA, a `ts` field). */
  deviceTs?: number;
  /**
   * The payload already serialised as JSON, when the producer has it: the log stores it verbatim
   * instead of stringifying `payload` again.
   */
  payloadJson?: string;
  /**
   * The raw body as received (MQTT), any bytes. The log stores them as they are and works out their
   * JSON form (`bodyJson`) when the event is read, so intake never parses a payload; a body that is
   * not UTF-8 goes on the wire as base64 with `payloadEncoding: "base64"`.
   */
  body?: Buffer;
  /**
   * `base64`: the payload is bytes even if they happen to be UTF-8 (`body`, stored byte-exact), or
   * `payloadJson` is already the base64 of them (the reader side of the log sets that).
   */
  payloadEncoding?: 'base64';
  /** MQTT 5 user properties of the publish (a name given more than once: its values in order). */
  userProperties?: Record<string, string | string[]>;
  /** MQTT 5 content type of the publish. */
  contentType?: string;
}

/** An event as it is on the wire and in `sluice buffer export`. */
export interface SluiceEvent {
  id: string;
  seq: number;
  ts: number;
  source: string;
  topic: string;
  payload: unknown;
  kind: EventKind;
  deviceTs?: number;
  /** Set while the gateway's clock was not yet synchronised (a Pi without RTC boots in 1970). */
  clockUnsynced?: boolean;
  /** Set when the payload is binary (not UTF-8): `payload` is then the base64 of its bytes. */
  payloadEncoding?: 'base64';
  /** MQTT 5 publishes only, when set by the device. */
  userProperties?: Record<string, string | string[]>;
  contentType?: string;
}

/** An event as a reader of the ring log sees it: the few fields routing needs, plus its JSON. */
export interface StoredEvent {
  seq: number;
  ts: number;
  kind: EventKind;
  topic: string;
  /** The complete event envelope, serialised (a JSON object). */
  json: string;
}

/**
 * Serialises an event envelope. Field order is fixed (the contract's), and a pre-serialised payload is
 * spliced in as-is: the hot path of ingest does one JSON.parse validation and no re-stringify.
 */
export function encodeEvent(gatewayId: string, seq: number, ts: number, e: EventInput, clockUnsynced = false): string {
  const payload = payloadJsonOf(e);
  // Gateway id, source and topic repeat from event to event: their JSON forms are cached (this is
  // the ingest hot path; JSON.stringify of a string costs more than the rest of the envelope).
  let s = `{"id":${quoted(gatewayId).slice(0, -1)}:${seq}","seq":${seq},"ts":${ts},"source":${quoted(e.source)},"topic":${quoted(e.topic)},"payload":${payload},"kind":"${e.kind ?? 'reading'}"`;
  if (e.deviceTs !== undefined && Number.isFinite(e.deviceTs)) s += `,"deviceTs":${e.deviceTs}`;
  if (e.payloadEncoding === 'base64' || (e.payloadJson === undefined && e.body !== undefined && !isUtf8(e.body))) s += ',"payloadEncoding":"base64"';
  if (clockUnsynced) s += ',"clockUnsynced":true';
  if (e.userProperties !== undefined) s += `,"userProperties":${JSON.stringify(e.userProperties)}`;
  if (e.contentType !== undefined) s += `,"contentType":${JSON.stringify(e.contentType)}`;
  return `${s}}`;
}

const quotedCache = new Map<string, string>();

/** JSON.stringify(s) for a string, cached (bounded: cleared past 4096 distinct strings). */
function quoted(str: string): string {
  let q = quotedCache.get(str);
  if (q === undefined) {
    q = JSON.stringify(str);
    if (quotedCache.size >= 4096) quotedCache.clear();
    quotedCache.set(str, q);
  }
  return q;
}

/** The payload of an event as JSON text: the producer's own, else `payload` serialised (NaN → null). */
export function payloadJsonOf(e: EventInput): string {
  if (e.payloadJson !== undefined) return e.payloadJson;
  if (e.body !== undefined) return e.payloadEncoding !== 'base64' && isUtf8(e.body) ? bodyJson(e.body.toString('utf8')) : base64Json(e.body);
  // JSON.stringify returns undefined for undefined/functions and turns NaN/Infinity into null.
  return JSON.stringify(e.payload) ?? 'null';
}

/** The JSON form of a binary payload: the base64 of its bytes, as a string. */
export function base64Json(bytes: Uint8Array, start = 0, end = bytes.length): string {
  return `"${Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString('base64')}"`;
}

/** True for a payload that is bytes (a body that is not UTF-8): analytics, rules and the dashboard skip it. */
export function isBinaryPayload(payload: unknown): payload is Uint8Array {
  return payload instanceof Uint8Array;
}

/**
 * Turns an MQTT/HTTP body into a payload: parsed JSON where the body is JSON, else the string
 * (contract); a body that is not UTF-8 stays bytes (its JSON form is base64). Returns the JSON text
 * too, so it is stored without being serialised again.
 */
export function payloadFromBody(body: Buffer | string): { payload: unknown; payloadJson: string; payloadEncoding?: 'base64' } {
  if (typeof body !== 'string' && !isUtf8(body)) return { payload: body, payloadJson: base64Json(body), payloadEncoding: 'base64' };
  const text = typeof body === 'string' ? body : body.toString('utf8');
  const trimmed = text.trim();
  const first = trimmed.charCodeAt(0);
  if (first === 45 || (first >= 48 && first <= 57)) {
    // JSON that starts with "-" or a digit can only be a number: a regex decides, so a reading
    // like "21.5C" costs no thrown exception (the common case on the hot path).
    if (JSON_NUMBER.test(trimmed)) return { payload: Number(trimmed), payloadJson: trimmed };
  } else if (first === 123 || first === 91 || first === 34 || trimmed === 'true' || trimmed === 'false' || trimmed === 'null') {
    try {
      return { payload: JSON.parse(trimmed), payloadJson: trimmed };
    } catch {
      // not JSON: kept as a string below
    }
  }
  return { payload: text, payloadJson: JSON.stringify(text) };
}

/** The JSON form of a body's payload (`payloadFromBody(text).payloadJson`). */
export function bodyJson(text: string): string {
  return payloadFromBody(text).payloadJson;
}

/** The JSON number grammar (RFC 8259). */
const JSON_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;
