import { describe, expect, it } from 'vitest';
import { tempDir } from '../test/helpers/peers.js';
import { ChunkBuilder, decodeChunk, KIND_CODE } from './chunk.js';
import { openRingLog } from './index.js';
import { RecentChunks } from './recent-chunks.js';
import { cleanupsAfterEach } from '../test/helpers/cleanups.js';

/** Builds a chunk of `n` events from `first` into the ring (or a Buffer of its own when it does not fit). */
function commit(recent: RecentChunks, lane: 0 | 1, first: number, n: number, bodyBytes = 100): Buffer {
  const b = new ChunkBuilder('gw');
  for (let i = 0; i < n; i++)
    b.add(first + i, 1_700_000_000_000, KIND_CODE.reading, { source: 's', topic: 't', payload: undefined, body: Buffer.alloc(bodyBytes, 0x31) });
  const into = recent.region(b.bytes);
  const buf = b.build(1, into?.buf);
  recent.add(lane, first, first + n - 1, buf, into?.at);
  return buf;
}

const spans = (recent: RecentChunks, lane: 0 | 1) => recent.of(lane).map((c) => [c.firstSeq, c.lastSeq]);

describe('recent chunks ring', () => {
  it('keeps chunks built in it, and drops those a new region overlaps (and all older) before handing it out', () => {
    // ~1.1 KB a chunk of 10 events: three fit in 4 KB.
    const recent = new RecentChunks(4096);
    commit(recent, 0, 1, 10);
    commit(recent, 1, 11, 10);
    commit(recent, 0, 21, 10);
    expect(spans(recent, 0)).toEqual([
      [1, 10],
      [21, 30],
    ]);
    expect(spans(recent, 1)).toEqual([[11, 20]]);
    // The fourth wraps to the start: it overwrites the first.
    commit(recent, 0, 31, 10);
    expect(spans(recent, 0)).toEqual([
      [21, 30],
      [31, 40],
    ]);
    // A larger one takes the second and third regions: the lane-1 chunk and the lane-0 one there go.
    commit(recent, 0, 41, 20);
    expect(spans(recent, 1)).toEqual([]);
    expect(spans(recent, 0)).toEqual([
      [31, 40],
      [41, 60],
    ]);
    // What is kept still reads back whole.
    for (const c of recent.of(0)) expect(decodeChunk(c.buf).events.map((e) => e.seq)[0]).toBe(c.firstSeq);
  });

  it('drops a chunk left at the end of the ring once the ring has gone round past it', () => {
    const recent = new RecentChunks(4096);
    commit(recent, 0, 1, 14); // [0, ~1.6K)
    commit(recent, 0, 15, 14); // [~1.6K, ~3.2K)
    commit(recent, 0, 29, 5); // the tail, ~0.6K
    commit(recent, 0, 34, 14); // wraps: overwrites the first
    commit(recent, 0, 48, 14); // overwrites the second
    commit(recent, 0, 62, 14); // does not fit after it: wraps again, over 34..47; the tail chunk is older and goes too
    expect(spans(recent, 0)).toEqual([
      [48, 61],
      [62, 75],
    ]);
    for (const c of recent.of(0)) expect(decodeChunk(c.buf).lastSeq).toBe(c.lastSeq);
  });

  it('a chunk larger than the ring is built apart and ends what its lane keeps', () => {
    const recent = new RecentChunks(4096);
    commit(recent, 0, 1, 10);
    commit(recent, 1, 11, 10);
    const big = commit(recent, 0, 21, 100);
    expect(decodeChunk(big).events).toHaveLength(100);
    expect(spans(recent, 0)).toEqual([]);
    expect(spans(recent, 1)).toEqual([[11, 20]]);
  });

  it('after many rounds of small chunks in both lanes, it keeps exactly the newest ones whose bytes are untouched', () => {
    const recent = new RecentChunks(16 * 1024);
    const built: Array<{ lane: 0 | 1; first: number; last: number }> = [];
    let seq = 1;
    for (let i = 0; i < 2000; i++) {
      const lane = i % 7 === 0 ? 1 : 0;
      const n = 1 + ((i * 13) % 17);
      commit(recent, lane, seq, n);
      built.push({ lane, first: seq, last: seq + n - 1 });
      seq += n;
    }
    for (const lane of [0, 1] as const) {
      const kept = recent.of(lane);
      expect(kept.length).toBeGreaterThan(0);
      // every kept chunk reads back whole: nothing kept was overwritten
      for (const c of kept) expect(decodeChunk(c.buf).events.map((e) => e.seq)).toEqual(Array.from({ length: c.lastSeq - c.firstSeq + 1 }, (_, k) => c.firstSeq + k));
      // and what is kept is the lane's newest chunks, contiguous
      const ofLane = built.filter((b) => b.lane === lane).map((b) => [b.first, b.last]);
      expect(spans(recent, lane)).toEqual(ofLane.slice(ofLane.length - kept.length));
    }
    // and it drops no more than it must: the kept chunks fill the ring but for about two chunks' room
    const keptBytes = [...recent.of(0), ...recent.of(1)].reduce((n, c) => n + c.buf.length, 0);
    expect(keptBytes).toBeGreaterThan(16 * 1024 - 2 * 2048);
  });

  it('forget drops a lane up to a chunk; clear drops everything', () => {
    const recent = new RecentChunks(8192);
    commit(recent, 0, 1, 10);
    commit(recent, 0, 11, 10);
    commit(recent, 0, 21, 10);
    recent.forget(0, 20);
    expect(spans(recent, 0)).toEqual([[21, 30]]);
    recent.clear();
    expect(spans(recent, 0)).toEqual([]);
  });
});

describe('ring log with its recent ring going round', () => {
  const cleanups = cleanupsAfterEach();

  it('a reader following the head gets every event intact while commits overwrite the ring many times', async () => {
    const d = tempDir('sluice-recent-');
    cleanups.push(d.cleanup);
    const log = await openRingLog({
      dir: d.path,
      gatewayId: 'gw-t',
      config: { maxBytes: 1024 ** 3, onFull: 'drop-oldest', retention: 86_400_000, commitInterval: 2, commitEvents: 2000, diskReserve: 0 },
    });
    cleanups.push(() => log.close());
    const reader = log.reader('up');
    const body = Buffer.alloc(400, 0x32);
    const total = 40_000; // ~17 MB of chunks: the 4 MiB ring goes round four times
    const writing = (async () => {
      for (let i = 0; i < total; i += 2000)
        await log.append(Array.from({ length: 2000 }, (_, j) => ({ source: 'mqtt', topic: `t/${(i + j) % 5}`, payload: undefined, body })));
    })();
    let seen = 0;
    let expected = 1;
    while (seen < total) {
      const got = await reader.next(3000, 1e9);
      if (got.length === 0) {
        await Promise.race([reader.wait(), writing]);
        continue;
      }
      for (const e of got) {
        expect(e.seq).toBe(expected++);
        expect(e.topic).toBe(`t/${(e.seq - 1) % 5}`);
      }
      seen += got.length;
      await reader.commit(got.at(-1)!.seq);
      // a reader a little behind: some chunks it reads were already overwritten in the ring
      if (seen % 6000 === 0) await new Promise((r) => setTimeout(r, 20));
    }
    await writing;
    expect(log.stats().quarantined).toBe(0);
    expect(await reader.next(1, 1e9)).toEqual([]);
  });

  it('a commit with large chunks in both lanes near the end of the ring keeps both intact', async () => {
    const d = tempDir('sluice-recent-');
    cleanups.push(d.cleanup);
    const log = await openRingLog({ dir: d.path, gatewayId: 'gw-t', config: { maxBytes: 1024 ** 3, onFull: 'drop-oldest', retention: 86_400_000, commitEvents: 100_000, diskReserve: 0 } });
    cleanups.push(() => log.close());
    const reader = log.reader('up');
    const body = Buffer.alloc(1000, 0x33);
    const events = (n: number, kind: 'reading' | 'anomaly', from: number) =>
      Array.from({ length: n }, (_, i) => ({ source: 'mqtt', topic: `t/${from + i}`, payload: undefined, body, kind }));
    // ~0.5 MiB, then one commit of ~2.5 MiB of readings and ~2 MiB of anomalies: together they
    // pass the end of the 4 MiB ring, so built apart the second would wrap round onto the first.
    await log.append(events(500, 'reading', 0));
    await log.append([...events(2500, 'reading', 500), ...events(2000, 'anomaly', 3000)]);
    const got = [];
    for (;;) {
      const batch = await reader.next(10_000, 1e9);
      if (batch.length === 0) break;
      got.push(...batch);
      await reader.commit(batch.at(-1)!.seq);
    }
    expect(log.stats().quarantined).toBe(0);
    expect(got).toHaveLength(5000);
    expect(new Set(got.map((e) => e.topic)).size).toBe(5000);
  });
});
