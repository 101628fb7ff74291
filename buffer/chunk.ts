/**
 * The chunk: many events in one LevelDB value, written once per group commit (buffer/SPEC.md
 * "Chunk format"). A chunk is self-checking: a CRC-32 over everything after the CRC field, so a
 * flipped byte is detected on read and the chunk is quarantined instead of served.
 *
 * Layout (little endian):
 *   u8  version (2)
 *   u32 crc32 of bytes [5, end)
 *   u32 count
 *   f64 firstSeq
 *   u32 boot      (process that wrote it; keys the clock correction of unsynced events)
 *   u32 textBytes
 *   text          topic0 json0 topic1 json1 ... (UTF-8)
 *   count x { u32 seq - firstSeq, f64 ts, u8 kind | 0x80 when the clock was unsynced,
 *             u32 topic bytes, u32 json bytes }
 *
 * Hot path: `append` writes each event's topic and JSON straight into a per-lane byte arena and its
 * fixed fields into a table arena, so an event waiting for its commit holds no JS objects at all
 * (nothing for the garbage collector to scan or promote); a commit is two copies and one CRC.
 */
import { isAscii } from 'node:buffer';
import { crc32 } from 'node:zlib';
import type { EventKind, StoredEvent } from '../src/event.js';

export const CHUNK_VERSION = 2;
const HEADER = 1 + 4 + 4 + 8 + 4 + 4;
export const PER_EVENT = 4 + 8 + 1 + 4 + 4;
export const UNSYNCED = 0x80;

const KINDS: EventKind[] = ['reading', 'anomaly', 'aggregate', 'status'];
export const KIND_CODE: Record<EventKind, number> = { reading: 0, anomaly: 1, aggregate: 2, status: 3 };

/** Events of one lane waiting for a commit, already encoded. */
export class ChunkBuilder {
  private text: Buffer = Buffer.allocUnsafe(64 * 1024);
  private table: Buffer = Buffer.allocUnsafe(1024 * PER_EVENT);
  textBytes = 0;
  count = 0;
  firstSeq = 0;
  lastSeq = 0;
  minTs = Number.POSITIVE_INFINITY;
  maxTs = Number.NEGATIVE_INFINITY;
  unsynced = false;

  /** Bytes the chunk will take. */
  get bytes(): number {
    return HEADER + this.textBytes + this.count * PER_EVENT;
  }

  add(seq: number, ts: number, kind: number, topic: string, json: string): void {
    // UTF-8 takes at most 3 bytes per UTF-16 code unit: grow first, then write without measuring.
    const need = this.textBytes + 3 * (topic.length + json.length);
    if (need > this.text.length) this.text = grow(this.text, need, this.textBytes);
    const topicBytes = this.text.write(topic, this.textBytes, 'utf8');
    const jsonBytes = this.text.write(json, this.textBytes + topicBytes, 'utf8');
    this.textBytes += topicBytes + jsonBytes;
    const o = this.count * PER_EVENT;
    if (o + PER_EVENT > this.table.length) this.table = grow(this.table, o + PER_EVENT, o);
    if (this.count === 0) this.firstSeq = seq;
    const t = this.table;
    t.writeUInt32LE(seq - this.firstSeq, o);
    t.writeDoubleLE(ts, o + 4);
    t[o + 12] = kind;
    t.writeUInt32LE(topicBytes, o + 13);
    t.writeUInt32LE(jsonBytes, o + 17);
    this.count++;
    this.lastSeq = seq;
    if (ts < this.minTs) this.minTs = ts;
    if (ts > this.maxTs) this.maxTs = ts;
    if (kind & UNSYNCED) this.unsynced = true;
  }

  /** A position to roll back to (an append call that fails halfway accepts nothing). */
  mark(): { textBytes: number; count: number; lastSeq: number; minTs: number; maxTs: number; unsynced: boolean } {
    return { textBytes: this.textBytes, count: this.count, lastSeq: this.lastSeq, minTs: this.minTs, maxTs: this.maxTs, unsynced: this.unsynced };
  }

  rollback(m: ReturnType<ChunkBuilder['mark']>): void {
    Object.assign(this, m);
  }

  build(boot: number): Buffer {
    const n = this.count;
    const buf = Buffer.allocUnsafe(this.bytes);
    buf[0] = CHUNK_VERSION;
    buf.writeUInt32LE(n, 5);
    buf.writeDoubleLE(this.firstSeq, 9);
    buf.writeUInt32LE(boot >>> 0, 17);
    buf.writeUInt32LE(this.textBytes, 21);
    this.text.copy(buf, HEADER, 0, this.textBytes);
    this.table.copy(buf, HEADER + this.textBytes, 0, n * PER_EVENT);
    buf.writeUInt32LE(crc32(buf.subarray(5)), 1);
    return buf;
  }

  reset(): void {
    this.textBytes = 0;
    this.count = 0;
    this.firstSeq = 0;
    this.lastSeq = 0;
    this.minTs = Number.POSITIVE_INFINITY;
    this.maxTs = Number.NEGATIVE_INFINITY;
    this.unsynced = false;
    // Do not keep a huge arena from one burst forever.
    if (this.text.length > 8 * 1024 * 1024) this.text = Buffer.allocUnsafe(64 * 1024);
    if (this.table.length > 64 * 1024 * PER_EVENT) this.table = Buffer.allocUnsafe(1024 * PER_EVENT);
  }
}

function grow(buf: Buffer, need: number, used: number): Buffer {
  const next = Buffer.allocUnsafe(Math.max(need, buf.length * 2));
  buf.copy(next, 0, 0, used);
  return next;
}

export interface DecodedChunk {
  firstSeq: number;
  lastSeq: number;
  boot: number;
  events: StoredEvent[];
  /** Per event: stamped while the clock was unsynced (parallel to `events`), or null when none was. */
  unsynced: boolean[] | null;
  bytes: number;
}

export class ChunkCorruptError extends Error {
  constructor(reason: string) {
    super(`chunk is damaged: ${reason}`);
    this.name = 'ChunkCorruptError';
  }
}

/** The seq range of a chunk from its header, without decoding it (the caller knows it is sound). */
export function chunkSpan(buf: Buffer): { firstSeq: number; count: number } {
  return { firstSeq: buf.readDoubleLE(9), count: buf.readUInt32LE(5) };
}

/** Decodes and verifies a chunk; throws ChunkCorruptError when it is damaged. */
export function decodeChunk(buf: Buffer): DecodedChunk {
  if (buf.length < HEADER) throw new ChunkCorruptError(`${buf.length} bytes is shorter than a header`);
  if (buf[0] !== CHUNK_VERSION) throw new ChunkCorruptError(`unknown version ${buf[0]}`);
  if (buf.readUInt32LE(1) !== crc32(buf.subarray(5))) throw new ChunkCorruptError('CRC mismatch');
  const n = buf.readUInt32LE(5);
  const firstSeq = buf.readDoubleLE(9);
  const boot = buf.readUInt32LE(17);
  const textBytes = buf.readUInt32LE(21);
  const tableStart = HEADER + textBytes;
  if (tableStart + n * PER_EVENT !== buf.length) throw new ChunkCorruptError('sizes do not add up');
  // ASCII text (the usual case) decodes once and is sliced by byte offsets; otherwise per field.
  const ascii = isAscii(buf.subarray(HEADER, tableStart));
  const whole = ascii ? buf.toString('latin1', HEADER, tableStart) : '';
  const events: StoredEvent[] = new Array(n);
  let unsynced: boolean[] | null = null;
  let o = tableStart;
  let t = 0;
  for (let i = 0; i < n; i++) {
    const seq = firstSeq + buf.readUInt32LE(o);
    const ts = buf.readDoubleLE(o + 4);
    const k = buf[o + 12];
    const topicLen = buf.readUInt32LE(o + 13);
    const jsonLen = buf.readUInt32LE(o + 17);
    o += PER_EVENT;
    if (t + topicLen + jsonLen > textBytes) throw new ChunkCorruptError('event overruns the text');
    const topic = ascii ? whole.slice(t, t + topicLen) : buf.toString('utf8', HEADER + t, HEADER + t + topicLen);
    t += topicLen;
    const json = ascii ? whole.slice(t, t + jsonLen) : buf.toString('utf8', HEADER + t, HEADER + t + jsonLen);
    t += jsonLen;
    if (k & UNSYNCED) {
      unsynced ??= new Array(n).fill(false);
      unsynced[i] = true;
    }
    events[i] = { seq, ts, kind: KINDS[k & 0x7f] ?? 'reading', topic, json };
  }
  if (t !== textBytes) throw new ChunkCorruptError('text length does not match the event table');
  return { firstSeq, lastSeq: events[n - 1]?.seq ?? firstSeq, boot, events, unsynced, bytes: buf.length };
}
