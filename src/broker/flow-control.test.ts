/**
 * MQTT 5 Receive Maximum on what the broker sends (flow-control.ts), with real clients against
 * the broker: a raw MQTT 5 subscriber that acknowledges only when told (test/faults/raw-client.ts;
 * mqtt.js's `customHandleAcks` cannot show it, as mqtt.js reads no further packet while an ack is
 * withheld), and mqtt.js clients with `properties.receiveMaximum`.
 */
import mqtt from 'mqtt';
import type mqttPacket from 'mqtt-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../test/helpers/peers.js';
import { type RawClient, rawConnect } from '../../test/faults/raw-client.js';
import { silentLogger } from '../core/log.js';
import { LocalBroker } from './index.js';
import { brokerSchema } from './schema.js';

const brokers: LocalBroker[] = [];
const clients: mqtt.MqttClient[] = [];
const raws: RawClient[] = [];
afterEach(async () => {
  for (const r of raws.splice(0)) r.sock.destroy();
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
  await Promise.all(brokers.splice(0).map((b) => b.stop()));
});

async function start(config: Record<string, unknown> = {}) {
  const port = await freePort();
  const rejected: Record<string, number> = {};
  const broker = new LocalBroker(brokerSchema.parse({ listeners: [{ host: '127.0.0.1', port }], ingest: ['sensors/#'], ...config }), {
    logger: silentLogger,
    ingest: async () => {},
    countRejected: (reason, n = 1) => {
      rejected[reason] = (rejected[reason] ?? 0) + n;
    },
  });
  await broker.start();
  brokers.push(broker);
  return { port, rejected };
}

async function connect(port: number, opts: mqtt.IClientOptions = {}) {
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, protocolVersion: 5, ...opts });
  clients.push(c);
  return c;
}

type Publish = mqttPacket.IPublishPacket;

/**
 * A raw subscriber that acknowledges nothing by itself. `receiveMaximum` undefined: none sent.
 * `clean: false` resumes the session (Clean Start 0).
 */
async function rawSubscriber(
  port: number,
  opts: { id: string; version?: 4 | 5; receiveMaximum?: number; sessionExpiry?: number; clean?: boolean; subs: [string, 0 | 1 | 2][] },
) {
  const version = opts.version ?? 5;
  const c = await rawConnect(port, { version });
  raws.push(c);
  const properties: mqttPacket.IConnectPacket['properties'] = {};
  if (opts.receiveMaximum !== undefined) properties.receiveMaximum = opts.receiveMaximum;
  if (opts.sessionExpiry !== undefined) properties.sessionExpiryInterval = opts.sessionExpiry;
  c.send({
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: version,
    clean: opts.clean ?? true,
    clientId: opts.id,
    keepalive: 60,
    ...(version === 5 ? { properties } : {}),
  });
  expect(((await c.next('connack')) as { returnCode?: number; reasonCode?: number }).reasonCode ?? 0).toBe(0);
  if (opts.subs.length) {
    c.send({ cmd: 'subscribe', messageId: 1, subscriptions: opts.subs.map(([topic, qos]) => ({ topic, qos })) });
    await c.next('suback');
  }
  const publishes = () => c.packets.filter((p): p is Publish => p.cmd === 'publish');
  return { c, publishes, payloads: () => publishes().map((p) => p.payload.toString()) };
}

const settle = () => new Promise((r) => setTimeout(r, 300));

describe('MQTT 5 Receive Maximum on what the broker sends', () => {
  it('keeps at most Receive Maximum QoS 1 messages unacknowledged, sends the rest in order as acks come, and QoS 0 at once', async () => {
    const { port } = await start();
    const sub = await rawSubscriber(port, { id: 'small-device', receiveMaximum: 2, subs: [['flow/#', 1], ['q0/#', 0]] });
    const pub = await connect(port);
    // Every publish is acknowledged to the publisher although the subscriber acknowledges nothing.
    for (let i = 0; i < 10; i++) await pub.publishAsync('flow/t', String(i), { qos: 1 });
    await expect.poll(() => sub.publishes().length).toBe(2);
    await settle();
    expect(sub.payloads()).toEqual(['0', '1']);
    // QoS 0 is not limited by the window.
    await pub.publishAsync('q0/x', 'zero', { qos: 0 });
    await expect.poll(() => sub.payloads()).toContain('zero');

    let acked = 0;
    let most = 0;
    while (acked < 10) {
      const qos1 = sub.publishes().filter((p) => p.qos === 1);
      most = Math.max(most, qos1.length - acked);
      sub.c.send({ cmd: 'puback', messageId: qos1[acked].messageId });
      acked++;
      if (acked <= 8) await expect.poll(() => sub.publishes().filter((p) => p.qos === 1).length).toBe(acked + 2);
    }
    await settle();
    const qos1 = sub.publishes().filter((p) => p.qos === 1);
    expect(most).toBe(2);
    expect(qos1.map((p) => p.payload.toString())).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    expect(new Set(qos1.map((p) => p.messageId)).size).toBe(10);
  });

  it('frees a QoS 2 slot on PUBCOMP (not PUBREC), or on a PUBREC with an error code', async () => {
    const { port } = await start();
    const sub = await rawSubscriber(port, { id: 'qos2-device', receiveMaximum: 2, subs: [['flow/#', 2]] });
    const pub = await connect(port);
    for (let i = 0; i < 4; i++) await pub.publishAsync('flow/t', String(i), { qos: 2 });
    await expect.poll(() => sub.payloads()).toEqual(['0', '1']);
    const [first, second] = sub.publishes();
    sub.c.send({ cmd: 'pubrec', messageId: first.messageId });
    sub.c.send({ cmd: 'pubrec', messageId: second.messageId });
    await expect.poll(() => sub.c.packets.filter((p) => p.cmd === 'pubrel').length).toBe(2);
    await settle();
    expect(sub.payloads()).toEqual(['0', '1']);
    sub.c.send({ cmd: 'pubcomp', messageId: first.messageId });
    await expect.poll(() => sub.payloads()).toEqual(['0', '1', '2']);
    // A PUBREC with an error code ends the exchange (no PUBREL follows) and frees the slot.
    sub.c.send({ cmd: 'pubrec', messageId: sub.publishes()[2].messageId, reasonCode: 0x80 });
    await expect.poll(() => sub.payloads()).toEqual(['0', '1', '2', '3']);
    await settle();
    expect(sub.c.packets.filter((p) => p.cmd === 'pubrel')).toHaveLength(2);
  });

  it('does not send a held message whose Message Expiry passed while it waited; one still valid goes with what remains', async () => {
    const { port } = await start();
    const sub = await rawSubscriber(port, { id: 'expiry-device', receiveMaximum: 1, subs: [['flow/#', 1]] });
    const pub = await connect(port);
    await pub.publishAsync('flow/t', 'first', { qos: 1 });
    await pub.publishAsync('flow/t', 'short', { qos: 1, properties: { messageExpiryInterval: 1 } });
    await pub.publishAsync('flow/t', 'long', { qos: 1, properties: { messageExpiryInterval: 60 } });
    await expect.poll(() => sub.payloads()).toEqual(['first']);
    await new Promise((r) => setTimeout(r, 2100));
    sub.c.send({ cmd: 'puback', messageId: sub.publishes()[0].messageId });
    await expect.poll(() => sub.payloads()).toEqual(['first', 'long']);
    const interval = sub.publishes()[1].properties?.messageExpiryInterval;
    expect(interval).toBeGreaterThan(55);
    expect(interval).toBeLessThan(60);
  });

  it('leaves an MQTT 3.1.1 subscriber, and an MQTT 5 one without Receive Maximum, as before', async () => {
    const { port } = await start();
    const old = await rawSubscriber(port, { id: 'v311', version: 4, subs: [['flow/#', 1]] });
    const v5 = await rawSubscriber(port, { id: 'v5-default', subs: [['flow/#', 1]] });
    const pub = await connect(port, { protocolVersion: 4 });
    for (let i = 0; i < 20; i++) await pub.publishAsync('flow/t', String(i), { qos: 1 });
    const all = Array.from({ length: 20 }, (_, i) => String(i));
    await expect.poll(() => old.payloads()).toEqual(all);
    await expect.poll(() => v5.payloads()).toEqual(all);
  });

  it('a persistent session gets what was held and what was unacknowledged on its next connection, in order, through the window', async () => {
    const { port } = await start();
    const opts = { id: 'persistent-device', receiveMaximum: 2, sessionExpiry: 300 };
    const first = await rawSubscriber(port, { ...opts, subs: [['flow/#', 1]] });
    const pub = await connect(port);
    for (let i = 0; i < 5; i++) await pub.publishAsync('flow/t', String(i), { qos: 1 });
    await expect.poll(() => first.payloads()).toEqual(['0', '1']);
    await settle();
    first.c.sock.destroy();
    await expect.poll(() => brokers[0].clientCount).toBe(1);
    await pub.publishAsync('flow/t', '5', { qos: 1 }); // queued while offline

    const again = await rawSubscriber(port, { ...opts, clean: false, subs: [] });
    // Resent: the two unacknowledged (at least once), then the held ones and the queued one.
    await expect.poll(() => again.payloads()).toEqual(['0', '1']);
    await settle();
    expect(again.payloads()).toEqual(['0', '1']);
    for (let acked = 0; acked < 6; acked++) {
      await expect.poll(() => again.publishes().length).toBeGreaterThan(acked);
      again.c.send({ cmd: 'puback', messageId: again.publishes()[acked].messageId });
    }
    await settle();
    expect(again.payloads()).toEqual(['0', '1', '2', '3', '4', '5']);
  });

  it('drops a subscriber as a slow consumer when what waits for its acknowledgements passes the bound; publishers are not held', async () => {
    const { port, rejected } = await start();
    const sub = await rawSubscriber(port, { id: 'never-acks', receiveMaximum: 1, subs: [['flow/#', 1]] });
    const pub = await connect(port);
    const big = Buffer.alloc(200 * 1024, 'b');
    // 50 × 200 KiB: past the 8 MiB slow-consumer bound.
    for (let i = 0; i < 50; i++) await pub.publishAsync('flow/big', big, { qos: 1 });
    await sub.c.closed;
    expect(rejected.slow_consumer).toBe(1);
    expect(sub.publishes()).toHaveLength(1);
  });

  it('an mqtt.js client with receiveMaximum 2 gets a retained set larger than the slow-consumer bound, never more than 2 unacknowledged', async () => {
    const { port, rejected } = await start();
    const pub = await connect(port);
    const big = Buffer.alloc(250 * 1024, 'r');
    for (let i = 0; i < 40; i++) await pub.publishAsync(`kept/${i}`, big, { qos: 1, retain: true }); // ~9.8 MiB
    // It acknowledges each message 20 ms after it came (a device that does some work first).
    const sub = await connect(port, { properties: { receiveMaximum: 2 }, customHandleAcks: (_t, _m, _p, done) => setTimeout(() => done(0), 20) });
    let outstanding = 0;
    let most = 0;
    sub.on('packetreceive', (p) => {
      if (p.cmd === 'publish' && p.qos === 1) most = Math.max(most, ++outstanding);
    });
    sub.on('packetsend', (p) => {
      if (p.cmd === 'puback') outstanding--;
    });
    const got = new Set<string>();
    sub.on('message', (t) => got.add(t));
    await sub.subscribeAsync('kept/#', { qos: 1 });
    await expect.poll(() => got.size, { timeout: 15_000 }).toBe(40);
    // Retained messages are paced one after another while some wait here: seldom 2 out at once.
    expect(most).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(2);
    expect(sub.connected).toBe(true);
    expect(rejected.slow_consumer).toBeUndefined();
  });
});
