/**
 * The chunk: many events in one LevelDB value, written once per group commit (buffer/SPEC.md
 * "Chunk format"). A chunk is self-checking: a CRC-32 over everything after the CRC field, so a
 * flipped byte is detected on read and the chunk is quarantined instead of served.
 *
 * Layout (little endian):
 *   u8  version (1)
 *   u32 crc32 of bytes [5, end)
 *   u32 count
 *   f64 firstSeq
 *   u32 boot     (process that wrote it; keys the clock correction of unsynced events)
 *   count x { u32 seq - firstSeq, f64 ts, u8 kind | 0x80 when the clock was unsynced,
 *             u32 topic length, u32 json length }   (lengths in UTF-16 code units)
 *   utf8 text: topic0 json0 topic1 json1 ...
 *
 * The text is decoded with one toString per chunk and sliced by code-unit lengths, so reading a
 * chunk costs one UTF-8 decode, not one per event.
 */
import { crc32 } from 'node:zlib';
import type { EventKind, StoredEvent } from '../src/event.js';

export const CHUNK_VERSION = 1;
const HEADER = 1 + 4 + 4 + 8 + 4;
const PER_EVENT = 4 + 8 + 1 + 4 + 4;
export const UNSYNCED = 0x80;

const KINDS: EventKind[] = ['reading', 'anomaly', 'aggregate', 'status'];
export const KIND_CODE: Record<EventKind, number> = { reading: 0, anomaly: 1, aggregate: 2, status: 3 };

/** Events waiting for a commit, column-wise (one array per field: no object per event). */
export class PendingColumns {
  seqs: number[] = [];
  ts: number[] = [];
  kinds: number[] = [];
  topics: string[] = [];
  jsons: string[] = [];
  /** UTF-16 code units of topics + jsons: an estimate of the bytes before encoding. */
  chars = 0;

  get length(): number {
    return this.seqs.length;
  }

  push(seq: number, ts: number, kind: number, topic: string, json: string): void {
    this.seqs.push(seq);
    this.ts.push(ts);
    this.kinds.push(kind);
    this.topics.push(topic);
    this.jsons.push(json);
    this.chars += topic.length + json.length;
  }
}

export interface DecodedChunk {
  firstSeq: number;
  lastSeq: number;
  boot: number;
  events: StoredEvent[];
  /** Per event: stamped while the clock was unsynced (parallel to `events`). */
  unsynced: boolean[] | null;
  bytes: number;
}

export function encodeChunk(p: PendingColumns, boot: number): Buffer {
  const n = p.length;
  const text = joinText(p);
  const textBytes = Buffer.byteLength(text, 'utf8');
  const buf = Buffer.allocUnsafe(HEADER + n * PER_EVENT + textBytes);
  const firstSeq = p.seqs[0];
  buf.writeUInt8(CHUNK_VERSION, 0);
  buf.writeUInt32LE(n, 5);
  buf.writeDoubleLE(firstSeq, 9);
  buf.writeUInt32LE(boot >>> 0, 17);
  let o = HEADER;
  for (let i = 0; i < n; i++) {
    buf.writeUInt32LE(p.seqs[i] - firstSeq, o);
    buf.writeDoubleLE(p.ts[i], o + 4);
    buf.writeUInt8(p.kinds[i], o + 12);
    buf.writeUInt32LE(p.topics[i].length, o + 13);
    buf.writeUInt32LE(p.jsons[i].length, o + 17);
    o += PER_EVENT;
  }
  buf.write(text, o, 'utf8');
  buf.writeUInt32LE(crc32(buf.subarray(5)), 1);
  return buf;
}

function joinText(p: PendingColumns): string {
  // One string for the whole chunk: V8 builds it as a rope and flattens it once in Buffer.write.
  let s = '';
  for (let i = 0; i < p.topics.length; i++) s += p.topics[i] + p.jsons[i];
  return s;
}

export class ChunkCorruptError extends Error {
  constructor(reason: string) {
    super(`chunk is damaged: ${reason}`);
    this.name = 'ChunkCorruptError';
  }
}

/** Decodes and verifies a chunk; throws ChunkCorruptError when it is damaged. */
export function decodeChunk(buf: Buffer): DecodedChunk {
  if (buf.length < HEADER) throw new ChunkCorruptError(`${buf.length} bytes is shorter than a header`);
  if (buf[0] !== CHUNK_VERSION) throw new ChunkCorruptError(`unknown version ${buf[0]}`);
  if (buf.readUInt32LE(1) !== crc32(buf.subarray(5))) throw new ChunkCorruptError('CRC mismatch');
  const n = buf.readUInt32LE(5);
  const firstSeq = buf.readDoubleLE(9);
  const boot = buf.readUInt32LE(17);
  const textStart = HEADER + n * PER_EVENT;
  if (textStart > buf.length) throw new ChunkCorruptError('event table overruns the chunk');
  const text = buf.toString('utf8', textStart);
  const events: StoredEvent[] = new Array(n);
  let unsynced: boolean[] | null = null;
  let o = HEADER;
  let t = 0;
  for (let i = 0; i < n; i++) {
    const seq = firstSeq + buf.readUInt32LE(o);
    const ts = buf.readDoubleLE(o + 4);
    const k = buf[o + 12];
    const topicLen = buf.readUInt32LE(o + 13);
    const jsonLen = buf.readUInt32LE(o + 17);
    o += PER_EVENT;
    const topic = text.slice(t, t + topicLen);
    t += topicLen;
    const json = text.slice(t, t + jsonLen);
    t += jsonLen;
    if (k & UNSYNCED) {
      unsynced ??= new Array(n).fill(false);
      unsynced[i] = true;
    }
    events[i] = { seq, ts, kind: KINDS[k & 0x7f] ?? 'reading', topic, json };
  }
  if (t !== text.length) throw new ChunkCorruptError('text length does not match the event table');
  return { firstSeq, lastSeq: events[n - 1]?.seq ?? firstSeq, boot, events, unsynced, bytes: buf.length };
}

/** The decoded form of a chunk just written, built from its columns without a decode. */
export function chunkFromColumns(p: PendingColumns, boot: number, bytes: number): DecodedChunk {
  const n = p.length;
  const events: StoredEvent[] = new Array(n);
  let unsynced: boolean[] | null = null;
  for (let i = 0; i < n; i++) {
    const k = p.kinds[i];
    if (k & UNSYNCED) {
      unsynced ??= new Array(n).fill(false);
      unsynced[i] = true;
    }
    events[i] = { seq: p.seqs[i], ts: p.ts[i], kind: KINDS[k & 0x7f], topic: p.topics[i], json: p.jsons[i] };
  }
  return { firstSeq: p.seqs[0], lastSeq: p.seqs[n - 1], boot, events, unsynced, bytes };
}
