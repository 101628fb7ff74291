import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../src/core/event.js';
import { planRecords } from './records.js';
import type { Batch } from './sink.js';

function batch(sizes: number[]): Batch {
  const events: StoredEvent[] = sizes.map((size, k) => {
    const seq = k + 1;
    const topic = `t/${seq % 2}`;
    const json = JSON.stringify({ id: `gw:${seq}`, seq, ts: seq, source: 's', topic, payload: 'x'.repeat(size), kind: 'reading' });
    return { seq, ts: seq, kind: 'reading', topic, json };
  });
  return { gateway: 'gw', batchId: `1-${events.length}`, events };
}

describe('planRecords', () => {
  it('per event: one record each, keyed by topic, oversized ones set aside', async () => {
    const plan = await planRecords(batch([10, 5000, 10]), { aggregate: false, maxRecordBytes: 1000, gzip: false });
    expect(plan.tooLarge).toEqual([1]);
    expect(plan.records.map((r) => [r.key, r.indices, r.id])).toEqual([
      ['t/1', [0], 'gw:1'],
      ['t/1', [2], 'gw:3'],
    ]);
  });

  it('aggregated: contract batches split so that none exceeds the record limit, every event in exactly one', async () => {
    const b = batch(Array.from({ length: 50 }, () => 100));
    const plan = await planRecords(b, { aggregate: true, maxRecordBytes: 1000, gzip: true });
    expect(plan.tooLarge).toEqual([]);
    expect(plan.records.length).toBeGreaterThan(5);
    const seen: number[] = [];
    for (const r of plan.records) {
      const raw = gunzipSync(r.data);
      expect(raw.length + Buffer.byteLength(r.key)).toBeLessThanOrEqual(1000);
      const doc = JSON.parse(raw.toString());
      expect(doc.batchId).toBe(r.id);
      expect(doc.gateway).toBe('gw');
      expect(r.key).toBe('gw');
      seen.push(...doc.events.map((e: { seq: number }) => e.seq));
      expect(r.indices).toEqual(doc.events.map((e: { seq: number }) => e.seq - 1));
    }
    expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
  });

  it('clamps a long key on code points', async () => {
    const b = batch([1]);
    b.events[0].topic = '😀'.repeat(300);
    const plan = await planRecords(b, { aggregate: false, maxRecordBytes: 10_000, gzip: false, maxKeyChars: 256 });
    expect(Array.from(plan.records[0].key)).toHaveLength(256);
    expect(plan.records[0].key).toBe('😀'.repeat(256));
  });
});
