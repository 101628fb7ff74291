/**
 * Turning a batch into records for the record-oriented sinks (Kinesis, Event Hubs, Kafka), per the
 * contract's "Uplink batches": one record per event keyed by its topic, or with `aggregate` one
 * contract batch document per record. Guarantees: every event index of the batch ends up in exactly
 * one record or in `tooLarge` (an event that can never fit the peer's record limit: a poison event
 * to reject, not to retry forever); aggregate documents are split so that none exceeds the limit.
 */
import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';
import type { StoredEvent } from '../src/core/event.js';
import { type Batch, batchDocument, batchIdOf } from './sink.js';

const gzip = promisify(gzipCb);

export interface OutRecord {
  /** Partition / routing key. */
  key: string;
  data: Buffer;
  /** Indices into `batch.events` this record carries. */
  indices: number[];
  /** Event id (`<gateway>:<seq>`) or, aggregated, the sub-batch's batchId: the record's idempotency key. */
  id: string;
}

export interface RecordPlan {
  records: OutRecord[];
  /** Indices of events larger than one record may be. */
  tooLarge: number[];
}

export interface RecordOptions {
  aggregate: boolean;
  /** Largest record payload the peer takes, in bytes (the key counts towards it, as on Kinesis). */
  maxRecordBytes: number;
  /** A fixed key instead of the topic (per event) or the gateway id (aggregated). */
  key?: string;
  gzip: boolean;
  /** Longest key the peer takes, in characters (Kinesis: 256). */
  maxKeyChars?: number;
}

export async function planRecords(batch: Batch, opts: RecordOptions): Promise<RecordPlan> {
  const maxKey = opts.maxKeyChars ?? 256;
  const records: OutRecord[] = [];
  const tooLarge: number[] = [];
  if (!opts.aggregate) {
    for (let i = 0; i < batch.events.length; i++) {
      const e = batch.events[i];
      const key = clampKey(opts.key ?? (e.topic || '-'), maxKey);
      const raw = Buffer.from(e.json);
      const data = opts.gzip ? await gzip(raw) : raw;
      if (data.length + Buffer.byteLength(key) > opts.maxRecordBytes) tooLarge.push(i);
      else records.push({ key, data, indices: [i], id: `${batch.gateway}:${e.seq}` });
    }
    return { records, tooLarge };
  }
  const key = clampKey(opts.key ?? batch.gateway, maxKey);
  // Sized on the uncompressed document: gzip only shrinks it, so a split made here always fits.
  const overhead =
    Buffer.byteLength(key) + batchDocument({ gateway: batch.gateway, batchId: '0-0', events: [] }).length + 42;
  const budget = opts.maxRecordBytes - overhead;
  let group: StoredEvent[] = [];
  let groupIdx: number[] = [];
  let groupBytes = 0;
  const flush = async () => {
    if (group.length === 0) return;
    const raw = Buffer.from(batchDocument({ gateway: batch.gateway, batchId: batchIdOf(group), events: group }));
    records.push({ key, data: opts.gzip ? await gzip(raw) : raw, indices: groupIdx, id: batchIdOf(group) });
    group = [];
    groupIdx = [];
    groupBytes = 0;
  };
  for (let i = 0; i < batch.events.length; i++) {
    const e = batch.events[i];
    const bytes = Buffer.byteLength(e.json) + 1;
    if (bytes > budget) {
      tooLarge.push(i);
      continue;
    }
    if (groupBytes + bytes > budget) await flush();
    group.push(e);
    groupIdx.push(i);
    groupBytes += bytes;
  }
  await flush();
  return { records, tooLarge };
}

function clampKey(key: string, maxChars: number): string {
  if (key.length <= maxChars) return key;
  // Cut on code points, not UTF-16 units, so a surrogate pair is never split.
  return Array.from(key).slice(0, maxChars).join('');
}
