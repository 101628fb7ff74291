/**
 * Key layout of the ring log's LevelDB (buffer/SPEC.md "Key layout"). All keys are binary and sort
 * bytewise:
 *   0x10 <lane> <lastSeq u64> a chunk, keyed by the seq of its LAST event, so that a seek to
 *                             "first key >= (lane, p + 1)" lands on the chunk holding the event after p
 *   0xe0 <lane> <lastSeq u64> the chunk's index entry (firstSeq, count, bytes, ts range): small, so
 *                             eviction and retention walk the index, never the chunks
 *   0xf0                      meta (JSON): nextSeq, per-lane totals, counters; written in every commit
 *   0xf1 <reader name utf8>   a reader's cursor (JSON)
 * The keys written in every commit (index, meta, cursors) sort AFTER all chunks: a table LevelDB
 * flushes then spans only the newest chunks and the small tail, not the whole key space, so its
 * compactions do not rewrite older chunks (write amplification).
 */
export const META_KEY = Buffer.from([0xf0]);
const READER = 0xf1;
const CHUNK = 0x10;
const INDEX = 0xe0;

/** Lane 0 holds readings, aggregates and status; lane 1 (the priority lane) holds anomalies and alarms. */
export const LANE_NORMAL = 0;
export const LANE_PRIORITY = 1;
export const LANES = [LANE_NORMAL, LANE_PRIORITY] as const;
export type Lane = 0 | 1;

function seqKey(prefix: number, lane: number, seq: number): Buffer {
  const k = Buffer.allocUnsafe(10);
  k[0] = prefix;
  k[1] = lane;
  // seq < 2^53: high and low 32-bit words, big endian, so keys sort by seq
  k.writeUInt32BE(Math.floor(seq / 0x1_0000_0000), 2);
  k.writeUInt32BE(seq >>> 0, 6);
  return k;
}

export const chunkKey = (lane: number, lastSeq: number) => seqKey(CHUNK, lane, lastSeq);
export const indexKey = (lane: number, lastSeq: number) => seqKey(INDEX, lane, lastSeq);
/** Exclusive upper bound of a lane's chunks or index entries. */
export const chunkEnd = (lane: number) => Buffer.from([CHUNK, lane + 1]);
export const indexEnd = (lane: number) => Buffer.from([INDEX, lane + 1]);

export function seqOfKey(k: Buffer): number {
  return k.readUInt32BE(2) * 0x1_0000_0000 + k.readUInt32BE(6);
}

export const readerKey = (name: string) => Buffer.concat([Buffer.from([READER]), Buffer.from(name, 'utf8')]);
export const READERS_START = Buffer.from([READER]);
export const READERS_END = Buffer.from([READER + 1]);
/** Bounds of everything but the tail (for a compaction after evictions). */
export const CHUNKS_START = Buffer.from([CHUNK]);
export const INDEX_END = Buffer.from([INDEX + 1]);

/** Index entry: what eviction and retention need to know about a chunk without reading it. */
export interface IndexEntry {
  lane: Lane;
  firstSeq: number;
  lastSeq: number;
  count: number;
  bytes: number;
  minTs: number;
  maxTs: number;
}

export function encodeIndex(e: IndexEntry): Buffer {
  const b = Buffer.allocUnsafe(8 + 4 + 4 + 8 + 8);
  b.writeDoubleLE(e.firstSeq, 0);
  b.writeUInt32LE(e.count, 8);
  b.writeUInt32LE(e.bytes, 12);
  b.writeDoubleLE(e.minTs, 16);
  b.writeDoubleLE(e.maxTs, 24);
  return b;
}

export function decodeIndex(key: Buffer, v: Buffer): IndexEntry | null {
  if (v.length !== 32 || key.length !== 10) return null;
  return {
    lane: key[1] as Lane,
    lastSeq: seqOfKey(key),
    firstSeq: v.readDoubleLE(0),
    count: v.readUInt32LE(8),
    bytes: v.readUInt32LE(12),
    minTs: v.readDoubleLE(16),
    maxTs: v.readDoubleLE(24),
  };
}
