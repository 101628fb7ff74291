import pino from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { type EventInput, payloadJsonOf } from '../core/event.js';
import { SparkplugIngest, type SparkplugConfig, sparkplugSchema } from './ingest.js';
import { DataType, decodePayload, encodePayload } from '../core/sparkplug/payload.js';

const T = 1_700_000_000_000;
const nbirth = Buffer.from(
  encodePayload({ seq: 0, timestamp: T, metrics: [{ name: 'bdSeq', datatype: DataType.Int64, value: 1, timestamp: T }, { name: 'temp', alias: 5, datatype: DataType.Float, value: 20.5, timestamp: T }] }),
);
const ndata = (seq: number, alias: number) => Buffer.from(encodePayload({ seq, timestamp: T, metrics: [{ alias, datatype: DataType.Float, value: 21.5, timestamp: T }] }));
const mqttEvent = (topic: string, body: Buffer): EventInput => ({ source: 'mqtt', topic, payload: undefined, body });

function setup(config: Partial<SparkplugConfig> = {}) {
  const published: { topic: string; payload: Buffer }[] = [];
  const registry = new Registry();
  const ingest = new SparkplugIngest(
    () => sparkplugSchema.parse(config),
    (topic, payload) => {
      published.push({ topic, payload });
      return Promise.resolve();
    },
    pino({ level: 'silent' }),
    registry,
  );
  return { ingest, published, registry };
}

describe('SparkplugIngest', () => {
  it('leaves a batch without Sparkplug publishes untouched (the same array)', () => {
    const { ingest } = setup();
    const batch = [mqttEvent('plant/temp', Buffer.from('21')), mqttEvent('spBv1.0/STATE/scada', Buffer.from('{"online":true}'))];
    expect(ingest.expand(batch)).toBe(batch);
  });

  it('replaces a publish by its metric events, keeps its raw bytes as base64, and keeps order', () => {
    const { ingest } = setup();
    const out = ingest.expand([mqttEvent('a/b', Buffer.from('1')), mqttEvent('spBv1.0/g/NBIRTH/n1', nbirth), mqttEvent('spBv1.0/g/NDATA/n1', ndata(1, 5))]);
    expect(out.map((e) => [e.topic, e.kind ?? 'reading'])).toEqual([
      ['a/b', 'reading'],
      ['spBv1.0/g/n1', 'status'],
      ['spBv1.0/g/n1/bdSeq', 'reading'],
      ['spBv1.0/g/n1/temp', 'reading'],
      ['spBv1.0/g/NBIRTH/n1', 'reading'],
      ['spBv1.0/g/n1/temp', 'reading'],
      ['spBv1.0/g/NDATA/n1', 'reading'],
    ]);
    expect(out[5].payload).toMatchObject({ metric: 'temp', value: 21.5, datatype: 'Float', group: 'g', node: 'n1' });
    const raw = out[6];
    expect(raw.payloadEncoding).toBe('base64');
    expect(Buffer.from(JSON.parse(payloadJsonOf(raw)) as string, 'base64').equals(ndata(1, 5))).toBe(true);
  });

  it('keepRaw: false drops the raw copy of what it decoded, never an undecodable publish', () => {
    const { ingest, registry } = setup({ keepRaw: false });
    const junk = mqttEvent('spBv1.0/g/NDATA/n9', Buffer.from([0xff, 0xff, 0xff]));
    const out = ingest.expand([mqttEvent('spBv1.0/g/NBIRTH/n1', nbirth), junk]);
    expect(out.map((e) => e.topic)).toEqual(['spBv1.0/g/n1', 'spBv1.0/g/n1/bdSeq', 'spBv1.0/g/n1/temp', 'spBv1.0/g/NDATA/n9']);
    expect(out[3]).toBe(junk);
    return registry.getSingleMetricAsString('sluice_sparkplug_problems_total').then((m) => expect(m).toMatch(/ 1$/m));
  });

  it('publishes an NCMD rebirth request to the node on an unknown alias', () => {
    const { ingest, published } = setup();
    ingest.expand([mqttEvent('spBv1.0/g/NBIRTH/n1', nbirth)]);
    ingest.expand([mqttEvent('spBv1.0/g/NDATA/n1', ndata(1, 77))]);
    expect(published.map((p) => p.topic)).toEqual(['spBv1.0/g/NCMD/n1']);
    expect(decodePayload(published[0].payload).metrics).toMatchObject([{ name: 'Node Control/Rebirth', value: true }]);
  });

  it('ingest: false stores Sparkplug publishes as they came', () => {
    const { ingest } = setup({ ingest: false });
    const batch = [mqttEvent('spBv1.0/g/NBIRTH/n1', nbirth)];
    expect(ingest.expand(batch)).toBe(batch);
  });
});
