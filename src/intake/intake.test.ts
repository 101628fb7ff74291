import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openRingLog } from '../../buffer/index.js';
import { bufferSchema } from '../../buffer/schema.js';
import type { RingLog } from '../../buffer/types.js';
import { tempDir } from '../../test/helpers/peers.js';
import { until } from '../../test/helpers/until.js';
import type { ObservedEvent } from '../analytics/index.js';
import { silentLogger } from '../core/log.js';
import type { EventInput } from '../core/event.js';
import { type Deriver, Intake, type IntakeFilter } from './index.js';

/**
 * A deriver that answers each event it watches with one `anomaly` on `<topic>/<suffix>`. Like the
 * real engines it is shown every event some deriver watches, and picks its own.
 */
function deriver(watch: string, suffix: string, seen: ObservedEvent[]): Deriver {
  return {
    watches: (topic) => topic.startsWith(watch),
    observe: (all) => {
      const events = all.filter((e) => e.topic.startsWith(watch));
      seen.push(...events.map((e) => ({ ...e })));
      return events.map((e) => ({ source: suffix, topic: `${e.topic}/${suffix}`, payload: { of: e.seq }, kind: 'anomaly' as const }));
    },
  };
}

async function readAll(log: RingLog): Promise<{ seq: number; topic: string }[]> {
  const reader = log.reader(`check-${Math.random()}`);
  const out = [];
  for (let batch = await reader.next(1000, 1 << 20); batch.length > 0; batch = await reader.next(1000, 1 << 20)) out.push(...batch);
  // Anomalies and alarms travel in the priority lane: order by seq to compare.
  return out.map((e) => ({ seq: e.seq, topic: e.topic })).sort((a, b) => a.seq - b.seq);
}

describe('intake', () => {
  let dir: ReturnType<typeof tempDir>;
  let log: RingLog;
  const ingested: Record<string, number> = {};
  const counter = { inc: ({ source }: { source: string }, n: number) => void (ingested[source] = (ingested[source] ?? 0) + n) };

  beforeEach(async () => {
    dir = tempDir();
    log = await openRingLog({ dir: dir.path, gatewayId: 'gw-intake', config: bufferSchema.parse({}), logger: silentLogger });
    for (const k of Object.keys(ingested)) delete ingested[k];
  });
  afterEach(async () => {
    await log.close();
    dir.cleanup();
  });

  const reading = (topic: string, v: number): EventInput => ({ source: 'mqtt', topic, payload: { v } });

  it('stores the batch, shows derivers only what they watch with final seqs, and stores what they derive', async () => {
    const seenByAnalytics: ObservedEvent[] = [];
    const seenByRules: ObservedEvent[] = [];
    const rules = { ...deriver('plant/', 'rule', seenByRules), dropping: false, keep: (e: EventInput[]) => e };
    const tapped: string[] = [];
    const alarms: { topic: string; firstSeq: number }[] = [];
    const intake = new Intake({
      log: () => log,
      logger: silentLogger,
      ingested: counter,
      analytics: () => deriver('plant/a', 'anomaly', seenByAnalytics),
      rules: () => rules,
      inputTaps: [{ observe: (events) => tapped.push(...events.map((e) => e.topic)) }],
      derivedTaps: [(events, firstSeq) => void alarms.push(...events.map((e) => ({ topic: e.topic, firstSeq })))],
    });
    await log.append([reading('warm/up', 0)]);
    const result = await intake.ingest([reading('plant/a', 1), reading('other/x', 2), reading('plant/b', 3)]);
    expect(result).toEqual({ firstSeq: 2, lastSeq: 4 });
    expect(tapped).toEqual(['plant/a', 'other/x', 'plant/b']);
    expect(intake.received).toBe(3);
    expect(seenByAnalytics.map((e) => [e.seq, e.topic])).toEqual([[2, 'plant/a']]);
    // Rules see the input they watch, then analytics' anomaly once it is stored (its seq known).
    await until(() => seenByRules.length === 3, 5000);
    expect(seenByRules.map((e) => [e.seq, e.topic])).toEqual([
      [2, 'plant/a'],
      [4, 'plant/b'],
      [5, 'plant/a/anomaly'],
    ]);
    await until(() => alarms.length === 4, 5000);
    const stored = await readAll(log);
    expect(stored.map((e) => e.topic).slice(0, 4)).toEqual(['warm/up', 'plant/a', 'other/x', 'plant/b']);
    expect(stored.map((e) => e.topic).slice(4).sort()).toEqual(['plant/a/anomaly', 'plant/a/anomaly/rule', 'plant/a/rule', 'plant/b/rule']);
    // Rules' own derived events are not shown to rules again.
    expect(seenByRules.some((e) => e.topic.endsWith('/rule'))).toBe(false);
    expect(ingested).toEqual({ mqtt: 3, analytics: 1, rules: 3 });
  });

  it('drop rules remove events before the log; a batch dropped whole resolves with an empty range', async () => {
    const filter: IntakeFilter & Deriver = {
      dropping: true,
      keep: (events) => events.filter((e) => !e.topic.startsWith('noise/')),
      watches: () => false,
      observe: () => [],
    };
    const intake = new Intake({ log: () => log, logger: silentLogger, ingested: counter, analytics: () => undefined, rules: () => filter });
    expect(await intake.ingest([reading('noise/a', 1)])).toEqual({ firstSeq: 0, lastSeq: -1 });
    expect(await intake.ingest([reading('noise/a', 1), reading('plant/a', 2)])).toEqual({ firstSeq: 1, lastSeq: 1 });
    expect((await readAll(log)).map((e) => e.topic)).toEqual(['plant/a']);
    expect(intake.received).toBe(1);
  });

  it('a deriver that throws does not fail a batch that is already durable (its producer would resend it)', async () => {
    const broken: Deriver = {
      watches: () => true,
      observe: () => {
        throw new Error('label set mismatch');
      },
    };
    const intake = new Intake({ log: () => log, logger: silentLogger, ingested: counter, analytics: () => broken, rules: () => undefined });
    expect(await intake.ingest([reading('plant/a', 1)])).toEqual({ firstSeq: 1, lastSeq: 1 });
    expect((await readAll(log)).map((e) => e.topic)).toEqual(['plant/a']);
  });
});
