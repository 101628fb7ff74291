import { describe, expect, it } from 'vitest';
import type { RingLogConfig as BufferConfig } from './schema.js';
import type { EventInput } from '../src/core/event.js';
import { tempDir } from '../test/helpers/peers.js';
import { BufferFullError, openRingLog, type RingLog } from './index.js';
import { cleanupsAfterEach } from '../test/helpers/cleanups.js';

const cleanups = cleanupsAfterEach();

function config(over: Partial<BufferConfig> = {}): BufferConfig {
  return {
    maxBytes: 1024 ** 3,
    onFull: 'drop-oldest',
    retention: 30 * 86_400_000,
    commitInterval: 2,
    commitEvents: 500,
    diskReserve: 0,
    ...over,
  };
}

function dir(): string {
  const d = tempDir('sluice-ringlog-');
  cleanups.push(d.cleanup);
  return d.path;
}

async function open(
  path: string,
  over: Partial<BufferConfig> = {},
  extra: { now?: () => number } = {},
): Promise<RingLog> {
  const log = await openRingLog({ dir: path, gatewayId: 'gw-t', config: config(over), ...extra });
  cleanups.push(() => log.close());
  return log;
}

const ev = (i: number, over: Partial<EventInput> = {}): EventInput => ({
  source: 'test',
  topic: `s/${i % 7}/temp`,
  payload: { v: i },
  ...over,
});
const many = (n: number, from = 0, over: Partial<EventInput> = {}) =>
  Array.from({ length: n }, (_, i) => ev(from + i, over));

describe('ring log: append and durability', () => {
  it('assigns strictly increasing seqs, serialises each event once with the contract envelope', async () => {
    const log = await open(dir());
    const a = await log.append(many(3));
    const b = await log.append([ev(9, { payloadJson: '{"raw":true}', deviceTs: 5, kind: 'status' })]);
    expect(a).toEqual({ firstSeq: 1, lastSeq: 3 });
    expect(b).toEqual({ firstSeq: 4, lastSeq: 4 });
    const got = await log.reader('r').next(10, 1e6);
    expect(got.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    const e4 = JSON.parse(got[3].json);
    expect(e4).toMatchObject({
      id: 'gw-t:4',
      seq: 4,
      source: 'test',
      topic: 's/2/temp',
      payload: { raw: true },
      kind: 'status',
      deviceTs: 5,
    });
    expect(got[3].kind).toBe('status');
    expect(got[3].topic).toBe('s/2/temp');
    expect(got[3].ts).toBe(e4.ts);
  });

  it('group commit: concurrent appends share a few fsynced batches', async () => {
    const log = await open(dir(), { commitInterval: 5, commitEvents: 10_000 });
    const results = await Promise.all(Array.from({ length: 2000 }, (_, i) => log.append([ev(i)])));
    expect(new Set(results.map((r) => r.firstSeq)).size).toBe(2000);
    expect(results.at(-1)?.lastSeq).toBe(2000);
    expect(log.stats().commits).toBeLessThan(50);
    expect(log.stats().events).toBe(2000);
  });

  it('rejects an event it cannot encode and accepts nothing of that call', async () => {
    const log = await open(dir());
    const bad = { source: 'x', topic: 't', payload: { n: 1n } } as unknown as EventInput;
    await expect(log.append([ev(1), bad])).rejects.toThrow(/not encodable/);
    expect(await log.append([ev(2)])).toEqual({ firstSeq: 1, lastSeq: 1 });
    expect(log.stats().events).toBe(1);
  });

  it('keeps seq and events across a restart, and never reuses seq after everything was evicted', async () => {
    const path = dir();
    let log = await open(path, { maxBytes: 20_000 });
    for (let i = 0; i < 20; i++) await log.append(many(50, i * 50));
    const before = log.stats();
    expect(before.evicted).toBeGreaterThan(0);
    expect(before.bytes).toBeLessThanOrEqual(20_000);
    await log.close();
    log = await open(path, { maxBytes: 20_000 });
    const after = log.stats();
    expect(after.events).toBe(before.events);
    expect(after.bytes).toBe(before.bytes);
    expect(after.evicted).toBe(before.evicted);
    expect(after.lastSeq).toBe(1000);
    expect((await log.append([ev(0)])).firstSeq).toBe(1001);
    await log.close();
    // Every event evicted (a tiny budget), then reopened: seq still continues.
    log = await open(path, { maxBytes: 1 });
    await log.append(many(10));
    await log.append(many(10));
    await log.close();
    log = await open(path, { maxBytes: 1 });
    expect((await log.append([ev(0)])).firstSeq).toBe(1022);
  });
});

describe('ring log: capacity policy', () => {
  it('drop-oldest evicts the oldest events, counts them, and counts what each reader skipped', async () => {
    const log = await open(dir(), { maxBytes: 30_000 });
    const r = log.reader('slow');
    for (let i = 0; i < 40; i++) await log.append(many(25, i * 25));
    const s = log.stats();
    expect(s.bytes).toBeLessThanOrEqual(30_000);
    expect(s.evicted).toBeGreaterThan(0);
    expect(s.evictedByReason.capacity).toBe(s.evicted);
    expect(s.events + s.evicted).toBe(1000);
    expect(s.firstSeq).toBe(s.evicted + 1);
    const first = await r.next(5, 1e6);
    expect(first[0].seq).toBe(s.firstSeq);
    expect(r.stats().skipped).toBe(s.evicted);
    expect(r.stats().pendingEvents).toBe(s.events);
  });

  it('evicts anomalies and audit events last', async () => {
    const log = await open(dir(), { maxBytes: 12_000 });
    await log.append([ev(0, { kind: 'anomaly', topic: 'alert/1' })]);
    await log.append([ev(0, { kind: 'audit', topic: 'sluice/audit/write/plc/sp' })]);
    for (let i = 0; i < 20; i++) await log.append(many(20, i * 20));
    const got = await log.reader('r').next(5, 1e6);
    expect(got[0]).toMatchObject({ seq: 1, kind: 'anomaly' });
    expect(got[1]).toMatchObject({ seq: 2, kind: 'audit', topic: 'sluice/audit/write/plc/sp' });
    expect(JSON.parse(got[1].json).kind).toBe('audit');
    expect(log.stats().evicted).toBeGreaterThan(0);
  });

  it('reject: refuses appends with BufferFullError (counted), and frees room once every reader delivered', async () => {
    const log = await open(dir(), { maxBytes: 10_000, onFull: 'reject' });
    const r = log.reader('up');
    let accepted = 0;
    let error: unknown;
    for (let i = 0; i < 200 && !error; i++) {
      try {
        await log.append(many(10, i * 10));
        accepted += 10;
      } catch (err) {
        error = err;
      }
    }
    expect(error).toBeInstanceOf(BufferFullError);
    expect(log.stats().refused).toBeGreaterThan(0);
    expect(log.stats().events).toBe(accepted);
    expect(log.stats().evicted).toBe(0);
    // Deliver everything: the delivered chunks may now go, and appends are accepted again.
    for (;;) {
      const batch = await r.next(100, 1e6);
      if (batch.length === 0) break;
      await r.commit(batch.at(-1)!.seq);
    }
    await log.append(many(10));
    expect(log.stats().lastSeq).toBe(accepted + 10);
    expect(r.stats().skipped).toBe(0);
  });

  it('retention evicts events older than buffer.retention', async () => {
    let now = Date.now();
    const log = await open(dir(), { retention: 60_000 }, { now: () => now });
    await log.append(many(10));
    now += 120_000;
    await log.append(many(10));
    // the next commit after the retention check interval applies it
    now += 2000;
    await log.append(many(1));
    const s = log.stats();
    expect(s.evictedByReason.retention).toBe(10);
    expect(s.events).toBe(11);
  });
});

describe('ring log: readers', () => {
  it('delivers at least once: uncommitted events come again after rewind and after a restart', async () => {
    const path = dir();
    let log = await open(path);
    await log.append(many(100));
    let r = log.reader('up');
    const a = await r.next(40, 1e6);
    await r.commit(a.at(-1)!.seq);
    const b = await r.next(40, 1e6);
    expect(b[0].seq).toBe(41);
    r.rewind();
    const again = await r.next(40, 1e6);
    expect(again[0].seq).toBe(41);
    await log.close();
    log = await open(path);
    r = log.reader('up');
    expect(r.stats()).toMatchObject({ committedSeq: 40, pendingEvents: 60, skipped: 0 });
    const c = await r.next(1000, 1e6);
    expect(c.map((e) => e.seq)).toEqual(Array.from({ length: 60 }, (_, i) => 41 + i));
  });

  it('each reader has its own cursor; dropReader forgets one', async () => {
    const path = dir();
    let log = await open(path);
    await log.append(many(10));
    const a = log.reader('a');
    const b = log.reader('b');
    await a.commit((await a.next(10, 1e6)).at(-1)!.seq);
    expect(a.stats().pendingEvents).toBe(0);
    expect(b.stats().pendingEvents).toBe(10);
    await log.dropReader('a');
    await log.close();
    log = await open(path);
    expect(log.reader('a').stats().pendingEvents).toBe(10);
    expect(log.reader('b').stats().pendingEvents).toBe(10);
  });

  it('respects maxEvents, maxBytes (at least one event) and a filter (filtered events are passed over)', async () => {
    const log = await open(dir());
    await log.append(many(50));
    const r = log.reader('r');
    const small = await r.next(100, 1);
    expect(small).toHaveLength(1);
    await r.commit(small[0].seq);
    const onlyZero = await r.next(100, 1e6, (_k, topic) => topic === 's/0/temp');
    expect(onlyZero.every((e) => e.topic === 's/0/temp')).toBe(true);
    expect(onlyZero.length).toBeGreaterThan(0);
    await r.commit(onlyZero.at(-1)!.seq);
    expect(await r.next(100, 1e6)).toEqual([]);
    expect(r.stats().pendingEvents).toBe(0);
  });

  it('wait() resolves when events arrive, or when the signal aborts', async () => {
    const log = await open(dir());
    const r = log.reader('r');
    const woke = r.wait();
    await log.append(many(1));
    await woke;
    expect(await r.next(10, 1e6)).toHaveLength(1);
    const ac = new AbortController();
    const w = r.wait(ac.signal);
    ac.abort();
    await w;
  });

  it('priority lane: anomalies go out before older backlog, for every reader', async () => {
    const log = await open(dir());
    await log.append(many(30));
    await log.append([ev(0, { kind: 'anomaly', topic: 'alert' })]);
    await log.append(many(5, 30));
    for (const name of ['x', 'y']) {
      const r = log.reader(name);
      const first = await r.next(10, 1e6);
      expect(first).toHaveLength(1);
      expect(first[0]).toMatchObject({ seq: 31, kind: 'anomaly' });
      await r.commit(31);
      const rest = await r.next(100, 1e6);
      expect(rest.map((e) => e.seq)).toEqual([...Array.from({ length: 30 }, (_, i) => i + 1), 32, 33, 34, 35, 36]);
    }
  });

  it('live first: new events go before the backlog, which still gets its share; acks survive a restart', async () => {
    const path = dir();
    let log = await open(path);
    await log.append(many(100)); // backlog: 1..100
    let r = log.reader('up', { liveFirst: true, backlogShare: 0.25 });
    await log.append(many(100, 100)); // live: 101..200
    const order: number[][] = [];
    for (let i = 0; i < 8; i++) {
      const b = await r.next(10, 1e6);
      order.push(b.map((e) => e.seq));
      await r.commit(b.at(-1)!.seq);
    }
    const firsts = order.map((b) => b[0]);
    expect(firsts[0]).toBe(101); // live first
    const backlogBatches = firsts.filter((s) => s <= 100).length;
    expect(backlogBatches).toBeGreaterThanOrEqual(1);
    expect(backlogBatches).toBeLessThanOrEqual(3);
    // within each lane order holds
    const live = order.flat().filter((s) => s > 100);
    const backlog = order.flat().filter((s) => s <= 100);
    expect(live).toEqual([...live].sort((a, b) => a - b));
    expect(backlog).toEqual(Array.from({ length: backlog.length }, (_, i) => i + 1));
    await log.close();
    log = await open(path);
    r = log.reader('up');
    const rest: number[] = [];
    for (;;) {
      const b = await r.next(50, 1e6);
      if (!b.length) break;
      rest.push(...b.map((e) => e.seq));
      await r.commit(b.at(-1)!.seq);
    }
    // exactly what was not acknowledged before the restart, nothing acknowledged again
    const acked = new Set(order.flat());
    const expected = Array.from({ length: 200 }, (_, i) => i + 1).filter((s) => !acked.has(s));
    expect(rest.sort((a, b) => a - b)).toEqual(expected);
    expect(r.stats().pendingEvents).toBe(0);
  });

  it('commit(seq) of one batch does not acknowledge an earlier batch still in flight', async () => {
    const log = await open(dir());
    await log.append(many(20));
    const r = log.reader('r', { liveFirst: true });
    await log.append(many(20, 20));
    const live = await r.next(5, 1e6);
    expect(live[0].seq).toBe(21);
    await r.commit(live.at(-1)!.seq);
    expect(r.stats().pendingEvents).toBe(35);
  });
});

describe('ring log: clock without RTC', () => {
  it('flags events stamped before the clock synced and corrects them by the monotonic offset', async () => {
    let wall = 86_400_000; // 2 January 1970: a Pi that just booted
    const log = await open(dir(), {}, { now: () => wall });
    await log.append([ev(1)]);
    const r = log.reader('r');
    const [before] = await r.next(1, 1e6);
    expect(JSON.parse(before.json).clockUnsynced).toBe(true);
    expect(before.ts).toBeLessThan(Date.UTC(2020, 0, 1));
    // NTP sets the clock; the next commit learns the offset.
    const synced = Date.now();
    wall = synced;
    await log.append([ev(2)]);
    r.rewind();
    const [fixed, after] = await r.next(2, 1e6);
    expect(fixed.seq).toBe(1);
    // The event was stamped ~0 ms of monotonic time before the sync, so its corrected ts is about `synced`.
    expect(Math.abs(fixed.ts - synced)).toBeLessThan(5_000);
    expect(JSON.parse(fixed.json)).toMatchObject({ ts: fixed.ts, clockUnsynced: true, seq: 1 });
    expect(JSON.parse(after.json).clockUnsynced).toBeUndefined();
  });
});

describe('ring log: envelope', () => {
  it('stores exactly the contract envelope, escapes included (encodeEvent with its cached quoting)', async () => {
    const log = await open(dir());
    for (const [src, topic] of [
      ['mqtt', 'a/b'],
      ['we"ird\\', 'tö/p\n"x"'],
      ['', ''],
    ]) {
      await log.append([{ source: src, topic, payload: { a: [1, 'x'] }, kind: 'anomaly', deviceTs: 5 }]);
    }
    const got = await log.reader('r').next(10, 1e6);
    expect(got).toHaveLength(3);
    for (const e of got) {
      const v = JSON.parse(e.json);
      expect(e.json).toBe(
        `{"id":${JSON.stringify(`gw-t:${e.seq}`)},"seq":${e.seq},"ts":${v.ts},"source":${JSON.stringify(v.source)},"topic":${JSON.stringify(v.topic)},"payload":{"a":[1,"x"]},"kind":"anomaly","deviceTs":5}`,
      );
      expect(e.topic).toBe(v.topic);
    }
    expect(JSON.parse(got[1].json)).toMatchObject({ source: 'we"ird\\', topic: 'tö/p\n"x"' });
  });
});
