/**
 * The chunk: many events in one LevelDB value, written once per group commit (buffer/SPEC.md
 * "Chunk format"). A chunk is self-checking: a CRC-32 over everything after the CRC field, so a
 * flipped byte is detected on read and the chunk is quarantined instead of served.
 *
 * Layout (little endian), version 3:
 *   u8  version (3)
 *   u32 crc32 of bytes [5, end)
 *   u32 count
 *   f64 firstSeq
 *   u32 boot      (process that wrote it; keys the clock correction of unsynced events)
 *   u32 textBytes
 *   u16 gateway id bytes
 *   text          gatewayId source0 topic0 payload0 source1 topic1 payload1 ... (UTF-8)
 *   count x { u32 seq - firstSeq, f64 ts, u8 kind | 0x80 when the clock was unsynced,
 *             u8 flags (1: payload is a raw body, 2: deviceTs is set, 4: the payload field starts
 *             with a JSON object of MQTT 5 properties {userProperties, contentType} and a '\n',
 *             8: the raw body (after those properties) is not UTF-8: its bytes, served as base64),
 *             u8 source bytes,
 *             u32 topic bytes, u32 payload bytes, f64 deviceTs }
 *
 * A chunk stores the fields of its events, not their JSON envelopes: the envelope repeats ~110
 * bytes of names per event, which would be most of what an SD card writes. Decoding gives the
 * fields back (and the JSON form of a raw MQTT body: a body that is not JSON becomes a JSON
 * string), so intake copies bytes and parses nothing; the wire envelope is built on the reader
 * side (chunk-source.ts), never here.
 *
 * Hot path: `add` copies each event's text straight into a per-lane byte arena and its fixed
 * fields into a table arena, so an event waiting for its commit holds no JS objects at all
 * (nothing for the garbage collector to scan or promote); a commit is two copies and one CRC.
 * Version 2 chunks (envelopes stored whole) are still read.
 */
import { isAscii, isUtf8 } from 'node:buffer';
import { crc32 } from 'node:zlib';
import { base64Json, bodyJson, type EventInput, type EventKind, payloadJsonOf } from '../src/core/event.js';

export const CHUNK_VERSION = 3;
const HEADER = 1 + 4 + 4 + 8 + 4 + 4 + 2;
export const PER_EVENT = 4 + 8 + 1 + 1 + 1 + 4 + 4 + 8;
export const UNSYNCED = 0x80;
const RAW_BODY = 1;
const HAS_DEVICE_TS = 2;
const HAS_MQTT5 = 4;
/** The raw body is bytes, not UTF-8 text. */
const BINARY_BODY = 8;

const KINDS: EventKind[] = ['reading', 'anomaly', 'aggregate', 'status', 'audit', 'alarm', 'derived'];
export const KIND_CODE: Record<EventKind, number> = { reading: 0, anomaly: 1, aggregate: 2, status: 3, audit: 4, alarm: 5, derived: 6 };

/** Strings whose UTF-8 bytes a builder remembers (sources and topics repeat; encoding costs more than copying). */
const UTF8_CACHE_ENTRIES = 1024;
const UTF8_CACHE_MAX_CHARS = 256;

/** Events of one lane waiting for a commit, already encoded. */
export class ChunkBuilder {
  private text: Buffer = Buffer.allocUnsafe(64 * 1024);
  private table!: Buffer;
  /** Over `table` (set together by `useTable`): DataView writes compile to plain stores, Buffer's writeXX methods check their arguments. */
  private view!: DataView;
  private readonly utf8 = new Map<string, Buffer>();
  private readonly gatewayId: Buffer;
  textBytes = 0;
  count = 0;
  firstSeq = 0;
  lastSeq = 0;
  minTs = Number.POSITIVE_INFINITY;
  maxTs = Number.NEGATIVE_INFINITY;
  unsynced = false;

  constructor(gatewayId: string) {
    this.gatewayId = Buffer.from(gatewayId, 'utf8');
    if (this.gatewayId.length > 0xffff) throw new Error('gateway.id is longer than 65535 bytes');
    this.useTable(Buffer.allocUnsafe(1024 * PER_EVENT));
    this.reset();
  }

  /** Bytes the chunk will take. */
  get bytes(): number {
    return HEADER + this.textBytes + this.count * PER_EVENT;
  }

  /** Encodes one event; throws (having written nothing that counts) when it cannot be stored. */
  add(seq: number, ts: number, kind: number, e: EventInput): void {
    const { source, topic, body } = e;
    const json = body ? '' : payloadJsonOf(e);
    const mqtt5 =
      e.userProperties === undefined && e.contentType === undefined
        ? ''
        : `${JSON.stringify({ userProperties: e.userProperties, contentType: e.contentType })}\n`;
    // UTF-8 takes at most 3 bytes per UTF-16 code unit: grow first, then write without measuring.
    const need = this.textBytes + 3 * (source.length + topic.length + json.length + mqtt5.length) + (body ? body.length : 0);
    if (need > this.text.length) this.text = grow(this.text, need, this.textBytes);
    const text = this.text;
    let at = this.textBytes;
    const sourceBytes = this.writeName(source, at);
    if (sourceBytes > 0xff) throw new Error('the event source is longer than 255 bytes');
    at += sourceBytes;
    const topicBytes = this.writeName(topic, at);
    at += topicBytes;
    let payloadBytes = mqtt5 ? text.write(mqtt5, at, 'utf8') : 0;
    if (body) {
      text.set(body, at + payloadBytes);
      payloadBytes += body.length;
    } else payloadBytes += text.write(json, at + payloadBytes, 'utf8');
    this.textBytes = at + payloadBytes;
    const o = this.count * PER_EVENT;
    if (o + PER_EVENT > this.table.length) this.useTable(grow(this.table, o + PER_EVENT, o));
    if (this.count === 0) this.firstSeq = seq;
    const hasDeviceTs = e.deviceTs !== undefined && Number.isFinite(e.deviceTs);
    const v = this.view;
    v.setUint32(o, seq - this.firstSeq, true);
    v.setFloat64(o + 4, ts, true);
    v.setUint8(o + 12, kind);
    // The body is copied as it is either way; the flag tells the reader to serve it as base64.
    const binary = body !== undefined && (e.payloadEncoding === 'base64' || !isUtf8(body));
    v.setUint8(o + 13, (body ? RAW_BODY : 0) | (hasDeviceTs ? HAS_DEVICE_TS : 0) | (mqtt5 ? HAS_MQTT5 : 0) | (binary ? BINARY_BODY : 0));
    v.setUint8(o + 14, sourceBytes);
    v.setUint32(o + 15, topicBytes, true);
    v.setUint32(o + 19, payloadBytes, true);
    v.setFloat64(o + 23, hasDeviceTs ? (e.deviceTs as number) : 0, true);
    this.count++;
    this.lastSeq = seq;
    if (ts < this.minTs) this.minTs = ts;
    if (ts > this.maxTs) this.maxTs = ts;
    if (kind & UNSYNCED) this.unsynced = true;
  }

  private useTable(table: Buffer): void {
    this.table = table;
    this.view = new DataView(table.buffer, table.byteOffset, table.byteLength);
  }

  /** Writes a source or topic (room is there already); returns its byte length. */
  private writeName(name: string, at: number): number {
    if (name.length > UTF8_CACHE_MAX_CHARS) return this.text.write(name, at, 'utf8');
    let bytes = this.utf8.get(name);
    if (bytes === undefined) {
      bytes = Buffer.from(name, 'utf8');
      if (this.utf8.size >= UTF8_CACHE_ENTRIES) this.utf8.clear();
      this.utf8.set(name, bytes);
    }
    this.text.set(bytes, at);
    return bytes.length;
  }

  /** A position to roll back to (an append call that fails halfway accepts nothing). */
  mark(): { textBytes: number; count: number; lastSeq: number; minTs: number; maxTs: number; unsynced: boolean } {
    return { textBytes: this.textBytes, count: this.count, lastSeq: this.lastSeq, minTs: this.minTs, maxTs: this.maxTs, unsynced: this.unsynced };
  }

  rollback(m: ReturnType<ChunkBuilder['mark']>): void {
    Object.assign(this, m);
  }

  /** Writes the chunk into `buf` (exactly `bytes` long; a new Buffer by default) and returns it. */
  build(boot: number, buf: Buffer = Buffer.allocUnsafe(this.bytes)): Buffer {
    const n = this.count;
    if (buf.length !== this.bytes) throw new RangeError(`a chunk of ${this.bytes} bytes cannot be built into ${buf.length}`);
    buf[0] = CHUNK_VERSION;
    buf.writeUInt32LE(n, 5);
    buf.writeDoubleLE(this.firstSeq, 9);
    buf.writeUInt32LE(boot >>> 0, 17);
    buf.writeUInt32LE(this.textBytes, 21);
    buf.writeUInt16LE(this.gatewayId.length, 25);
    this.text.copy(buf, HEADER, 0, this.textBytes);
    this.table.copy(buf, HEADER + this.textBytes, 0, n * PER_EVENT);
    buf.writeUInt32LE(crc32(buf.subarray(5)), 1);
    return buf;
  }

  reset(): void {
    this.count = 0;
    this.firstSeq = 0;
    this.lastSeq = 0;
    this.minTs = Number.POSITIVE_INFINITY;
    this.maxTs = Number.NEGATIVE_INFINITY;
    this.unsynced = false;
    // Do not keep a huge arena from one burst forever.
    if (this.text.length > 8 * 1024 * 1024) this.text = Buffer.allocUnsafe(64 * 1024);
    if (this.table.length > 64 * 1024 * PER_EVENT) this.useTable(Buffer.allocUnsafe(1024 * PER_EVENT));
    if (this.text.length < this.gatewayId.length) this.text = Buffer.allocUnsafe(this.gatewayId.length + 64 * 1024);
    this.textBytes = this.gatewayId.copy(this.text, 0);
  }
}

function grow(buf: Buffer, need: number, used: number): Buffer {
  const next = Buffer.allocUnsafe(Math.max(need, buf.length * 2));
  buf.copy(next, 0, 0, used);
  return next;
}

/**
 * One stored event's fields, as the chunk holds them: no wire envelope (the reader side builds
 * that, see chunk-source.ts). Version 2 chunks stored whole envelopes: `json` is set for those.
 */
export interface DecodedEvent {
  seq: number;
  ts: number;
  kind: EventKind;
  source: string;
  topic: string;
  /** The payload as JSON text (a raw body already turned into JSON). */
  payloadJson: string;
  deviceTs: number | undefined;
  /** Stamped while the clock looked unsynced. */
  unsynced: boolean;
  /** Version 2 only: the envelope as it was stored. */
  json?: string;
  /** Set when `payloadJson` is the base64 of a binary body. */
  payloadEncoding?: 'base64';
  /** MQTT 5 properties kept with the event. */
  userProperties?: Record<string, string | string[]>;
  contentType?: string;
}

export interface DecodedChunk {
  firstSeq: number;
  lastSeq: number;
  /** The process that wrote it (keys the clock correction of its unsynced events). */
  boot: number;
  gatewayId: string;
  events: DecodedEvent[];
  /** True when any of its events was stamped while the clock looked unsynced. */
  anyUnsynced: boolean;
  bytes: number;
}

export class ChunkCorruptError extends Error {
  constructor(reason: string) {
    super(`chunk is damaged: ${reason}`);
    this.name = 'ChunkCorruptError';
  }
}

/** Decodes and verifies a chunk; throws ChunkCorruptError when it is damaged. */
export function decodeChunk(buf: Buffer): DecodedChunk {
  if (buf.length < V2_HEADER) throw new ChunkCorruptError(`${buf.length} bytes is shorter than a header`);
  if (buf[0] !== CHUNK_VERSION && buf[0] !== 2) throw new ChunkCorruptError(`unknown version ${buf[0]}`);
  if (buf.readUInt32LE(1) !== crc32(buf.subarray(5))) throw new ChunkCorruptError('CRC mismatch');
  return buf[0] === 2 ? decodeV2(buf) : decodeV3(buf);
}

function decodeV3(buf: Buffer): DecodedChunk {
  if (buf.length < HEADER) throw new ChunkCorruptError(`${buf.length} bytes is shorter than a header`);
  const n = buf.readUInt32LE(5);
  const firstSeq = buf.readDoubleLE(9);
  const boot = buf.readUInt32LE(17);
  const textBytes = buf.readUInt32LE(21);
  const idBytes = buf.readUInt16LE(25);
  const tableStart = HEADER + textBytes;
  if (tableStart + n * PER_EVENT !== buf.length || idBytes > textBytes) throw new ChunkCorruptError('sizes do not add up');
  const text = fieldReader(buf, HEADER, tableStart);
  const gatewayId = text(0, idBytes);
  const events: DecodedEvent[] = new Array(n);
  let anyUnsynced = false;
  let o = tableStart;
  let t = idBytes;
  for (let i = 0; i < n; i++) {
    const seq = firstSeq + buf.readUInt32LE(o);
    const ts = buf.readDoubleLE(o + 4);
    const k = buf[o + 12];
    const flags = buf[o + 13];
    const sourceLen = buf[o + 14];
    const topicLen = buf.readUInt32LE(o + 15);
    const payloadLen = buf.readUInt32LE(o + 19);
    const deviceTs = flags & HAS_DEVICE_TS ? buf.readDoubleLE(o + 23) : undefined;
    o += PER_EVENT;
    if (t + sourceLen + topicLen + payloadLen > textBytes) throw new ChunkCorruptError('event overruns the text');
    const source = text(t, (t += sourceLen));
    const topic = text(t, (t += topicLen));
    let start = t;
    const end = (t += payloadLen);
    const unsynced = (k & UNSYNCED) !== 0;
    if (unsynced) anyUnsynced = true;
    let mqtt5: { userProperties?: Record<string, string | string[]>; contentType?: string } | undefined;
    if (flags & HAS_MQTT5) {
      // Found as a byte, never by decoding the field as text: the body after it may be binary.
      const nl = buf.indexOf(10, HEADER + start);
      if (nl < 0 || nl >= HEADER + end) throw new ChunkCorruptError('MQTT 5 properties are not terminated');
      try {
        mqtt5 = JSON.parse(buf.toString('utf8', HEADER + start, nl)) as typeof mqtt5;
      } catch {
        throw new ChunkCorruptError('MQTT 5 properties are not JSON');
      }
      start = nl - HEADER + 1;
    }
    const binary = (flags & BINARY_BODY) !== 0;
    const payload = binary ? base64Json(buf, HEADER + start, HEADER + end) : text(start, end);
    const payloadJson = flags & RAW_BODY && !binary ? bodyJson(payload) : payload;
    events[i] = { seq, ts, kind: KINDS[k & 0x7f] ?? 'reading', source, topic, payloadJson, deviceTs, unsynced };
    if (binary) events[i].payloadEncoding = 'base64';
    if (mqtt5?.userProperties !== undefined) events[i].userProperties = mqtt5.userProperties;
    if (mqtt5?.contentType !== undefined) events[i].contentType = mqtt5.contentType;
  }
  if (t !== textBytes) throw new ChunkCorruptError('text length does not match the event table');
  return { firstSeq, lastSeq: events[n - 1]?.seq ?? firstSeq, boot, gatewayId, events, anyUnsynced, bytes: buf.length };
}

/**
 * Reads text fields by offsets into [start, end): ASCII text (the usual case) is decoded once and
 * sliced; otherwise each field is decoded as UTF-8.
 */
function fieldReader(buf: Buffer, start: number, end: number): (from: number, to: number) => string {
  if (isAscii(buf.subarray(start, end))) {
    const whole = buf.toString('latin1', start, end);
    return (from, to) => whole.slice(from, to);
  }
  return (from, to) => buf.toString('utf8', start + from, start + to);
}

/** Version 2: `u32 textBytes` header, text `topic0 json0 ...`, table `u32 seq, f64 ts, u8 kind, u32 topic, u32 json`. */
const V2_HEADER = 1 + 4 + 4 + 8 + 4 + 4;
const V2_PER_EVENT = 4 + 8 + 1 + 4 + 4;

function decodeV2(buf: Buffer): DecodedChunk {
  const n = buf.readUInt32LE(5);
  const firstSeq = buf.readDoubleLE(9);
  const boot = buf.readUInt32LE(17);
  const textBytes = buf.readUInt32LE(21);
  const tableStart = V2_HEADER + textBytes;
  if (tableStart + n * V2_PER_EVENT !== buf.length) throw new ChunkCorruptError('sizes do not add up');
  const text = fieldReader(buf, V2_HEADER, tableStart);
  const events: DecodedEvent[] = new Array(n);
  let anyUnsynced = false;
  let o = tableStart;
  let t = 0;
  for (let i = 0; i < n; i++) {
    const seq = firstSeq + buf.readUInt32LE(o);
    const ts = buf.readDoubleLE(o + 4);
    const k = buf[o + 12];
    const topicLen = buf.readUInt32LE(o + 13);
    const jsonLen = buf.readUInt32LE(o + 17);
    o += V2_PER_EVENT;
    if (t + topicLen + jsonLen > textBytes) throw new ChunkCorruptError('event overruns the text');
    const topic = text(t, (t += topicLen));
    const json = text(t, (t += jsonLen));
    const unsynced = (k & UNSYNCED) !== 0;
    if (unsynced) anyUnsynced = true;
    events[i] = { seq, ts, kind: KINDS[k & 0x7f] ?? 'reading', source: '', topic, payloadJson: '', deviceTs: undefined, unsynced, json };
  }
  if (t !== textBytes) throw new ChunkCorruptError('text length does not match the event table');
  return { firstSeq, lastSeq: events[n - 1]?.seq ?? firstSeq, boot, gatewayId: '', events, anyUnsynced, bytes: buf.length };
}
