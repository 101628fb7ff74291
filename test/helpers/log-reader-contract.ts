/**
 * The LogReader contract suite (buffer/types.ts `LogReader`): the same checks run against every
 * log an uplink can read from, the real ring log (buffer/) and the in-memory one the uplink tests
 * use (test/helpers/uplink/memory-log.ts), so the stand-in cannot drift from the real thing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { LogReader } from '../../buffer/types.js';
import type { EventInput, StoredEvent } from '../../src/core/event.js';

export interface ContractLog {
  append(events: EventInput[]): Promise<{ firstSeq: number; lastSeq: number }> | { firstSeq: number; lastSeq: number };
  reader(name: string): LogReader;
  close(): Promise<void> | void;
}

const readings = (n: number, topic = (i: number) => `plant/s${i % 2}`): EventInput[] =>
  Array.from({ length: n }, (_, i) => ({ source: 'test', topic: topic(i), payload: { i } }));

/** Reads until the reader hands out nothing more (a hand-out may be shorter than asked). */
async function drain(reader: LogReader, maxEvents = 1000, filter?: Parameters<LogReader['next']>[2]): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  for (let batch = await reader.next(maxEvents, 1 << 20, filter); batch.length > 0; batch = await reader.next(maxEvents, 1 << 20, filter)) {
    expect(batch.length).toBeLessThanOrEqual(maxEvents);
    out.push(...batch);
  }
  return out;
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

export function describeLogReaderContract(label: string, open: () => Promise<ContractLog>): void {
  describe(`LogReader contract: ${label}`, () => {
    let log: ContractLog | undefined;
    afterEach(async () => {
      await log?.close();
      log = undefined;
    });

    it('hands out the events after the read position in seq order, at most maxEvents at a time, then nothing', async () => {
      log = await open();
      const { firstSeq, lastSeq } = await log.append(readings(10));
      const reader = log.reader('a');
      const events = await drain(reader, 3);
      expect(events.map((e) => e.seq)).toEqual(range(firstSeq, lastSeq));
      expect(JSON.parse(events[0].json)).toMatchObject({ seq: firstSeq, topic: 'plant/s0', payload: { i: 0 }, kind: 'reading' });
      expect(await reader.next(10, 1 << 20)).toEqual([]);
    });

    it('passes over what a filter refuses, and the read position moves past it', async () => {
      log = await open();
      const { firstSeq } = await log.append(readings(6));
      const reader = log.reader('f');
      const kept = await drain(reader, 100, (_kind, topic) => topic === 'plant/s1');
      expect(kept.map((e) => e.seq)).toEqual([firstSeq + 1, firstSeq + 3, firstSeq + 5]);
      expect(await reader.next(100, 1 << 20)).toEqual([]);
    });

    it('commit moves the cursor; pendingEvents counts what lies after it; rewind reads again from just after it', async () => {
      log = await open();
      const { firstSeq, lastSeq } = await log.append(readings(10));
      const reader = log.reader('c');
      expect(reader.stats().pendingEvents).toBe(10);
      const events = await drain(reader);
      await reader.commit(events[3].seq);
      expect(reader.stats()).toMatchObject({ name: 'c', committedSeq: firstSeq + 3, pendingEvents: 6 });
      reader.rewind();
      expect((await drain(reader)).map((e) => e.seq)).toEqual(range(firstSeq + 4, lastSeq));
    });

    it('wait resolves when events arrive after the read position, or when its signal aborts', async () => {
      log = await open();
      const reader = log.reader('w');
      await log.append(readings(1));
      await drain(reader);
      let woke = false;
      const waiting = reader.wait().then(() => (woke = true));
      await new Promise((r) => setTimeout(r, 50));
      expect(woke).toBe(false);
      await log.append(readings(1));
      await waiting;
      expect(woke).toBe(true);
      await drain(reader);
      const ctl = new AbortController();
      const aborted = reader.wait(ctl.signal);
      ctl.abort();
      await aborted;
    });
  });
}
