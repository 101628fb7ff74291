/**
 * Binary payloads end to end: random bytes (invalid UTF-8 among them) published with mosquitto_pub -f
 * to the gateway's broker arrive byte-exact at a real Mosquitto standing in for the cloud (as base64
 * in the MQTT uplink's batch envelope, `payloadEncoding: "base64"`), and a local consumer reads the
 * same through `GET /api/events`. Analytics watching the topic skips them, counted.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway, waitFor } from '../helpers/gateway.js';
import { mosquittoPub, type Peer, startMosquitto, tempDir } from '../helpers/peers.js';
import type { SluiceEvent } from '../../src/core/event.js';

describe('binary payloads: broker → ring log → MQTT uplink and local consumers, byte-exact', () => {
  let cloud: Peer;
  let sub: mqtt.MqttClient;
  const batches: { events: SluiceEvent[] }[] = [];
  const data = tempDir('sluice-binary-');
  let gw: TestGateway;
  const events = () => batches.flatMap((b) => b.events);

  // Invalid UTF-8 for certain (a lone continuation byte, an overlong form, a surrogate), then random bytes.
  const payloads = [
    Buffer.from([0x80]),
    Buffer.from([0xc0, 0xaf, 0x00, 0xff]),
    Buffer.concat([Buffer.from([0xed, 0xa0, 0x80]), randomBytes(61)]),
    ...Array.from({ length: 5 }, (_, i) => Buffer.concat([Buffer.from([0xfe]), randomBytes(1 + i * 997)])),
  ];

  beforeAll(async () => {
    cloud = await startMosquitto('', true);
    sub = await mqtt.connectAsync(cloud.url, { clientId: 'binary-cloud-sub', clean: false });
    await sub.subscribeAsync('sluice/gw-bin/events', { qos: 1 });
    sub.on('message', (_t, payload) => batches.push(JSON.parse(payload.toString())));
    gw = await startTestGateway(
      {
        gateway: { id: 'gw-bin', dataDir: data.path },
        uplinks: [{ name: 'cloud', type: 'mqtt' as const, url: cloud.url, topicPrefix: 'sluice' }],
        analytics: [{ name: 'bin-watch', match: 'bin/#', field: 'value', detector: { type: 'threshold', high: 10 } }],
      },
      data.path,
    );
  });

  afterAll(async () => {
    await gw?.stop();
    await sub?.endAsync();
    await cloud?.stop();
    data.cleanup();
  });

  it('random bytes published with mosquitto_pub -f arrive byte-exact at the cloud broker and at a local consumer', async () => {
    for (const [i, p] of payloads.entries()) {
      const file = join(data.path, `p${i}.bin`);
      writeFileSync(file, p);
      const r = await mosquittoPub(gw.mqttPort, ['-q', '1', '-t', `bin/dev/${i}`, '-f', file]);
      expect(r.status, r.stderr).toBe(0);
    }
    // Text still goes as JSON.
    writeFileSync(join(data.path, 't.json'), '{"value":3}');
    const txt = await mosquittoPub(gw.mqttPort, ['-q', '1', '-t', 'bin/dev/text', '-f', join(data.path, 't.json')]);
    expect(txt.status, txt.stderr).toBe(0);

    await waitFor(() => events().length >= payloads.length + 1, 20_000, 'events at the cloud broker');
    for (const [i, p] of payloads.entries()) {
      const e = events().find((x) => x.topic === `bin/dev/${i}`);
      expect(e?.payloadEncoding).toBe('base64');
      expect(Buffer.from(e?.payload as string, 'base64').equals(p)).toBe(true);
    }
    const text = events().find((x) => x.topic === 'bin/dev/text');
    expect(text?.payload).toEqual({ value: 3 });
    expect(text).not.toHaveProperty('payloadEncoding');

    const res = await fetch(`${gw.url}/api/events?consumer=bin-reader&max=100`);
    expect(res.status).toBe(200);
    const batch = (await res.json()) as { events: SluiceEvent[] };
    for (const [i, p] of payloads.entries()) {
      const e = batch.events.find((x) => x.topic === `bin/dev/${i}`);
      expect(e?.payloadEncoding).toBe('base64');
      expect(Buffer.from(e?.payload as string, 'base64').equals(p)).toBe(true);
    }

    // Analytics watched the topic: the binary payloads were skipped and counted, not logged as errors.
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    const skipped = /sluice_analytics_skipped_total\{reason="binary"\} (\d+)/.exec(metrics);
    expect(Number(skipped?.[1])).toBe(payloads.length);
  });
});
