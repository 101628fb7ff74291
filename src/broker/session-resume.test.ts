/**
 * MQTT 5 persistent sessions resumed on the local broker, with mqtt.js v5 clients: what was
 * queued while the subscriber was away reaches it on resume (also when it resumes with Session
 * Expiry 0, the session then ending with that connection), except messages whose Message Expiry
 * Interval passed, and those delivered carry the interval that remains (MQTT 5 §3.3.2.3.3).
 * aedes 2.0.0-beta.1 dropped the whole queue on a resume with Session Expiry 0 (aedes-adapter.ts,
 * completeConnects): the Paho cases offline_message_queueing and publication_expiry.
 */
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../test/helpers/peers.js';
import { silentLogger } from '../core/log.js';
import { LocalBroker } from './index.js';
import { brokerSchema } from './schema.js';

const brokers: LocalBroker[] = [];
const clients: mqtt.MqttClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
  await Promise.all(brokers.splice(0).map((b) => b.stop()));
});

async function start(): Promise<number> {
  const port = await freePort();
  const broker = new LocalBroker(brokerSchema.parse({ listeners: [{ host: '127.0.0.1', port }], ingest: ['sensors/#'] }), {
    logger: silentLogger,
    ingest: async () => {},
    countRejected: () => {},
  });
  await broker.start();
  brokers.push(broker);
  return port;
}

interface Got {
  payload: string;
  qos: number;
  expiry?: number;
}

/**
 * An MQTT 5 client that records every message from its first packet on (a resumed queue follows
 * the CONNACK at once), and whether the broker had its session.
 */
async function client(port: number, opts: mqtt.IClientOptions) {
  const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, protocolVersion: 5, ...opts });
  clients.push(c);
  const got: Got[] = [];
  c.on('message', (_t, payload, packet) =>
    got.push({ payload: payload.toString(), qos: packet.qos, expiry: packet.properties?.messageExpiryInterval }),
  );
  const connack = await new Promise<mqtt.IConnackPacket>((resolve, reject) => {
    c.once('connect', resolve);
    c.once('error', reject);
  });
  return { c, got, sessionPresent: connack.sessionPresent };
}

/** A subscriber with a session that outlives its connection, gone offline. */
async function offlineSubscriber(port: number, id: string, filter: string) {
  const { c } = await client(port, { clientId: id, clean: true, properties: { sessionExpiryInterval: 60 } });
  await c.subscribeAsync(filter, { qos: 2 });
  await c.endAsync();
}

const payloads = (got: Got[]) => got.map((g) => g.payload).sort();

describe('MQTT 5 session resumed after messages were queued', () => {
  it('delivers QoS 1 and 2 messages published while the subscriber was offline, QoS 0 not queued', async () => {
    const port = await start();
    await offlineSubscriber(port, 'resume-60', 'cmd/a/#');
    const { c: pub } = await client(port, { clientId: 'pub' });
    await pub.publishAsync('cmd/a/0', 'q0', { qos: 0 });
    await pub.publishAsync('cmd/a/1', 'q1', { qos: 1 });
    await pub.publishAsync('cmd/a/2', 'q2', { qos: 2 });

    const back = await client(port, { clientId: 'resume-60', clean: false, properties: { sessionExpiryInterval: 60 } });
    expect(back.sessionPresent).toBe(true);
    await expect.poll(() => payloads(back.got)).toEqual(['q1', 'q2']);
  });

  it('delivers the queue also when the session is resumed with Session Expiry 0, and the session then ends with that connection', async () => {
    const port = await start();
    await offlineSubscriber(port, 'resume-0', 'cmd/b/#');
    const { c: pub } = await client(port, { clientId: 'pub' });
    await pub.publishAsync('cmd/b/1', 'q1', { qos: 1 });
    await pub.publishAsync('cmd/b/2', 'q2', { qos: 2 });

    // No Session Expiry property: 0, the session ends when this connection closes (MQTT 5 §3.1.2.11.2).
    const back = await client(port, { clientId: 'resume-0', clean: false });
    expect(back.sessionPresent).toBe(true);
    await expect.poll(() => payloads(back.got)).toEqual(['q1', 'q2']);
    // Still subscribed while connected: a live message arrives once.
    await pub.publishAsync('cmd/b/3', 'live', { qos: 1 });
    await expect.poll(() => payloads(back.got)).toEqual(['live', 'q1', 'q2']);
    await back.c.endAsync();

    await pub.publishAsync('cmd/b/4', 'after the session ended', { qos: 1 });
    const again = await client(port, { clientId: 'resume-0', clean: false });
    expect(again.sessionPresent).toBe(false);
    await new Promise((r) => setTimeout(r, 300));
    expect(again.got).toEqual([]);
  });

  it('drops a queued message whose Message Expiry Interval passed and sends the others with the interval that remains', async () => {
    const port = await start();
    const { c: sub } = await client(port, { clientId: 'expiry', clean: true, properties: { sessionExpiryInterval: 60 } });
    await sub.subscribeAsync('cmd/c/#', { qos: 2 });
    // The session's expiry may also be set on DISCONNECT (as Paho's publication_expiry does).
    await sub.endAsync(false, { properties: { sessionExpiryInterval: 120 } });
    const { c: pub } = await client(port, { clientId: 'pub' });
    for (const qos of [1, 2] as const) {
      await pub.publishAsync('cmd/c/x', `expires ${qos}`, { qos, properties: { messageExpiryInterval: 1 } });
      await pub.publishAsync('cmd/c/x', `stays ${qos}`, { qos, properties: { messageExpiryInterval: 30 } });
    }
    await pub.publishAsync('cmd/c/x', 'no expiry', { qos: 1 });
    await new Promise((r) => setTimeout(r, 2100));

    const back = await client(port, { clientId: 'expiry', clean: false });
    await expect.poll(() => payloads(back.got)).toEqual(['no expiry', 'stays 1', 'stays 2']);
    await new Promise((r) => setTimeout(r, 300));
    expect(back.got).toHaveLength(3);
    for (const g of back.got.filter((m) => m.payload.startsWith('stays'))) {
      expect(g.expiry).toBeGreaterThan(0);
      expect(g.expiry).toBeLessThanOrEqual(28);
    }
    expect(back.got.find((m) => m.payload === 'no expiry')?.expiry).toBeUndefined();
  });
});
