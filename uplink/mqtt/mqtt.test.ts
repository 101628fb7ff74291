import { gunzipSync } from 'node:zlib';
import mqtt, { type MqttClient } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { type Peer, startMosquitto } from '../../test/helpers/peers.js';
import { memoryRunner } from '../../test/helpers/uplink/memory-runner.js';
import { MqttSink } from './index.js';
import { mqttUplinkSchema } from './schema.js';
import { until } from '../../test/helpers/until.js';
import { cleanupsAfterEach } from '../../test/helpers/cleanups.js';

interface Doc {
  gateway: string;
  batchId: string;
  events: { id: string; seq: number; topic: string; payload: { i: number }; kind: string }[];
}

const cleanups = cleanupsAfterEach();

/** A cloud-side consumer with a persistent session, so batches queued during its own outage reach it. */
async function subscribe(url: string, topic: string, gzip = false): Promise<{ docs: Doc[]; client: MqttClient }> {
  const docs: Doc[] = [];
  const client = await mqtt.connectAsync(url, {
    clientId: `cloud-consumer-${Date.now()}`,
    clean: false,
    reconnectPeriod: 50,
  });
  client.on('message', (_t, payload) => docs.push(JSON.parse((gzip ? gunzipSync(payload) : payload).toString())));
  await client.subscribeAsync(topic, { qos: 1 });
  cleanups.push(() => client.endAsync(true));
  return { docs, client };
}

function setup(peer: Peer, extra: Record<string, unknown> = {}) {
  const config = mqttUplinkSchema.parse({
    name: 'cloud',
    type: 'mqtt',
    url: peer.url,
    batch: { maxEvents: 200, maxDelay: 20 },
    retry: { initialDelay: 50, maxDelay: 500 },
    reconnect: { minDelay: 50, maxDelay: 300 },
    ackTimeout: '2s',
    ...extra,
  });
  const run = memoryRunner(config, (ctx) => new MqttSink(config, ctx));
  cleanups.push(run.stop);
  return run;
}

function seqsOf(docs: Doc[]): number[] {
  return docs.flatMap((d) => d.events.map((e) => e.seq));
}

describe('mqtt uplink (real Mosquitto)', () => {
  it('publishes contract batches in order to <prefix>/<gateway>/events', async () => {
    const peer = await startMosquitto();
    cleanups.push(() => peer.stop());
    const { docs } = await subscribe(peer.url, 'sluice/gw-01/events');
    const { log, reader, runner } = setup(peer);
    log.appendN(1000);
    runner.start();
    await until(() => reader.committed === 1000 && seqsOf(docs).length >= 1000);
    expect(seqsOf(docs)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    for (const d of docs) {
      expect(d.gateway).toBe('gw-01');
      expect(d.batchId).toBe(`${d.events[0].seq}-${d.events[d.events.length - 1].seq}`);
      expect(d.events.length).toBeLessThanOrEqual(200);
    }
    expect(docs[0].events[0]).toMatchObject({
      id: 'gw-01:1',
      seq: 1,
      topic: 'sensors/a/temp',
      payload: { i: 0 },
      kind: 'reading',
    });
    expect(runner.status()).toMatchObject({ connected: true, deliveredEvents: 1000, pendingEvents: 0 });
  });

  it('gzips the batch document when asked, under a custom prefix', async () => {
    const peer = await startMosquitto();
    cleanups.push(() => peer.stop());
    const { docs } = await subscribe(peer.url, 'fleet-a/gw-01/events', true);
    const { log, reader, runner } = setup(peer, { gzip: true, topicPrefix: 'fleet-a' });
    log.appendN(50);
    runner.start();
    await until(() => reader.committed === 50 && seqsOf(docs).length >= 50);
    expect(seqsOf(docs)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
  });
  it('splits batches over the broker limit: announced (MQTT 5) or configured', async () => {
    const peer = await startMosquitto('max_packet_size 6000\n');
    cleanups.push(() => peer.stop());
    const sizes: number[] = [];
    const docs: Doc[] = [];
    const sub = await mqtt.connectAsync(peer.url, { protocolVersion: 5 });
    cleanups.push(() => sub.endAsync(true));
    sub.on('message', (_t, p) => {
      sizes.push(p.length);
      docs.push(JSON.parse(p.toString()));
    });
    await sub.subscribeAsync('sluice/gw-01/events', { qos: 1 });
    const v5 = setup(peer, { protocolVersion: 5 });
    v5.log.appendN(300);
    v5.runner.start();
    await until(() => v5.reader.committed === 300 && seqsOf(docs).length >= 300);
    expect(seqsOf(docs)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    expect(Math.max(...sizes)).toBeLessThan(6000);
    expect(docs.every((d) => d.batchId === `${d.events[0].seq}-${d.events[d.events.length - 1].seq}`)).toBe(true);
    await v5.runner.stop(1000);

    sizes.length = 0;
    docs.length = 0;
    const v4 = setup(peer, { maxMessageBytes: '3KiB', name: 'cloud2', clientId: 'v4' });
    v4.log.appendN(100);
    v4.runner.start();
    await until(() => v4.reader.committed === 100 && seqsOf(docs).length >= 100);
    expect(seqsOf(docs)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(Math.max(...sizes)).toBeLessThanOrEqual(3072);
  });

  it('reports a clear error when the broker is unreachable', async () => {
    const peer = await startMosquitto();
    await peer.stop();
    const { log, runner } = setup(peer, { ackTimeout: '300ms' });
    log.appendN(5);
    runner.start();
    await until(() => runner.status().retried > 0);
    expect(runner.status().lastError).toMatch(/mqtt:\/\/127\.0\.0\.1:\d+: connection refused/);
    expect(runner.status().connected).toBe(false);
    expect(runner.status().pendingEvents).toBe(5);
  });
});
