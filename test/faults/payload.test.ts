/**
 * Payload abuse: deeply nested JSON, giant numbers, NaN/Infinity, invalid UTF-8, 0-byte
 * and max-size payloads. Each is either stored faithfully (the upstream batch carries the body's
 * JSON text, or the body as a string) or refused with a counted reason; the gateway never crashes,
 * and analytics and the dashboard feed, which look at every payload, keep going.
 */
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/gateway.js';
import { type ChildGateway, startChildGateway } from './child-gateway.js';
import { Upstream } from './oracle.js';
import { record } from './report.js';

const MAX_PAYLOAD = 64 * 1024;

describe('payload abuse', () => {
  let upstream: Upstream;
  let gw: ChildGateway;
  let client: mqtt.MqttClient;
  let cases = 0;
  let acknowledged = 0;
  let delivered = 0;
  const rawBatches: string[] = [];

  beforeAll(async () => {
    upstream = await Upstream.start();
    gw = await startChildGateway({
      broker: { maxPayloadBytes: MAX_PAYLOAD },
      analytics: [{ name: 'abuse', match: 'abuse/#', field: 'value', detector: 'auto' }],
      uplinks: [{ name: 'cloud', type: 'mqtt', url: upstream.url }],
    });
    // The raw batch text too: JSON.parse on our side would turn 1e400 into Infinity.
    const raw = await mqtt.connectAsync(upstream.url);
    await raw.subscribeAsync('sluice/gw-faults/events', { qos: 1 });
    raw.on('message', (_t, p) => rawBatches.push(p.toString('utf8')));
    client = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw.mqttPort}`, { reconnectPeriod: 200 });
  });

  afterAll(async () => {
    record('payload', { cases, acknowledged, delivered, lost: acknowledged - delivered, peakRssKb: gw?.peakRssKb });
    await client?.endAsync(true);
    await gw?.stop();
    gw?.cleanup();
    await upstream?.stop();
  });

  /** Publishes QoS 1; resolves the stored event's payload as the upstream saw it (parsed). */
  async function roundTrip(topic: string, body: Buffer | string): Promise<unknown> {
    cases++;
    await client.publishAsync(topic, body, { qos: 1 });
    acknowledged++;
    const e = await waitFor(() => upstream.events.find((x) => x.topic === topic), 15_000, `${topic} upstream`);
    delivered++;
    return e.payload;
  }

  it('keeps deeply nested JSON verbatim, and analytics and the dashboard feed survive it', async () => {
    const feed = await fetch(`${gw.url}/api/stream`).catch(() => undefined);
    const depth = 30_000;
    const nested = `${'['.repeat(depth)}1${']'.repeat(depth)}`;
    const objNested = `${'{"value":'.repeat(5000)}1${'}'.repeat(5000)}`;
    const p1 = await roundTrip('abuse/nested-array', nested);
    let d = 0;
    for (let x = p1; Array.isArray(x); x = x[0]) d++;
    expect(d).toBe(depth);
    await roundTrip('abuse/nested-object', objNested);
    await waitFor(() => rawBatches.some((b) => b.includes(objNested)), 10_000, 'the nested object verbatim');
    await feed?.body?.cancel();
    expect(await gw.healthz()).toBe(200);
  });

  it('keeps giant numbers as the device sent them', async () => {
    await roundTrip('abuse/huge', '1e400');
    await roundTrip('abuse/long', '123456789012345678901234567890.123456789');
    await roundTrip('abuse/value', '{"value":-1e309}');
    // The raw subscriber is a second connection: wait for it to have seen all three.
    const texts = ['"payload":1e400', '"payload":123456789012345678901234567890.123456789', '"payload":{"value":-1e309}'];
    await waitFor(() => texts.every((t) => rawBatches.some((b) => b.includes(t))), 10_000, 'the raw batches');
    for (const b of rawBatches) expect(() => JSON.parse(b)).not.toThrow();
  });

  it('keeps NaN and Infinity (not JSON) as strings', async () => {
    expect(await roundTrip('abuse/nan', 'NaN')).toBe('NaN');
    expect(await roundTrip('abuse/inf', 'Infinity')).toBe('Infinity');
    expect(await roundTrip('abuse/obj-nan', '{"value": NaN}')).toBe('{"value": NaN}');
    expect(await roundTrip('abuse/neg-inf', '-Infinity')).toBe('-Infinity');
  });

  it('keeps a 0-byte payload as an empty string', async () => {
    expect(await roundTrip('abuse/empty', Buffer.alloc(0))).toBe('');
  });

  it('keeps a payload of exactly maxPayloadBytes, refuses one byte more with a counted reason', async () => {
    const exact = `"${'x'.repeat(MAX_PAYLOAD - 2)}"`;
    expect(await roundTrip('abuse/max', exact)).toBe('x'.repeat(MAX_PAYLOAD - 2));
    cases++;
    const over = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw.mqttPort}`, { reconnectPeriod: 0 });
    over.on('error', () => {});
    over.publish('abuse/over', 'y'.repeat(MAX_PAYLOAD + 1), { qos: 1 });
    await waitFor(async () => ((await gw.status()).ingest.rejectedByReason.oversize ?? 0) >= 1, 5000, 'the oversize count');
    over.end(true);
    await new Promise((r) => setTimeout(r, 300));
    expect(upstream.events.some((e) => e.topic === 'abuse/over')).toBe(false);
  });

  it('stores a payload that is not valid UTF-8 byte-exact, served as base64 with payloadEncoding', async () => {
    cases++;
    const bytes = Buffer.from([0x7b, 0xff, 0xfe, 0x00, 0xc3, 0x28]);
    const bin = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw.mqttPort}`, { reconnectPeriod: 0 });
    await bin.publishAsync('abuse/binary', bytes, { qos: 1 });
    bin.end(true);
    const e = (await waitFor(() => upstream.events.find((x) => x.topic === 'abuse/binary'), 15_000, 'abuse/binary upstream')) as { payload: string; payloadEncoding?: string };
    expect(e.payloadEncoding).toBe('base64');
    expect(Buffer.from(e.payload, 'base64').equals(bytes)).toBe(true);
    // Valid multi-byte UTF-8 is kept as sent.
    expect(await roundTrip('abuse/utf8', '温度 21.5 °C ✓')).toBe('温度 21.5 °C ✓');
    expect(await gw.healthz()).toBe(200);
    expect(gw.process.exitCode).toBeNull();
  });
});
