/**
 * The local broker with MQTT 5 clients (mqtt.js, protocolVersion 5): refusals are reason codes on
 * a connection that stays up, properties reach the event, and the 3.1.1 guards hold on 5.0 too.
 */
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../test/helpers/peers.js';
import type { EventInput } from '../core/event.js';
import { silentLogger } from '../core/log.js';
import { hashPassword } from '../auth/password.js';
import { LocalBroker } from './index.js';
import { brokerSchema } from './schema.js';

const brokers: LocalBroker[] = [];
const clients: mqtt.MqttClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
  await Promise.all(brokers.splice(0).map((b) => b.stop()));
});

async function start(config: Record<string, unknown> = {}, ingest: (e: EventInput[]) => Promise<unknown> = async () => {}) {
  const port = await freePort();
  const rejected: Record<string, number> = {};
  const stored: EventInput[] = [];
  const broker = new LocalBroker(brokerSchema.parse({ listeners: [{ host: '127.0.0.1', port }], ...config }), {
    logger: silentLogger,
    ingest: (e) => {
      stored.push(...e);
      return ingest(e);
    },
    countRejected: (reason, n = 1) => {
      rejected[reason] = (rejected[reason] ?? 0) + n;
    },
  });
  await broker.start();
  brokers.push(broker);
  return { port, rejected, stored };
}

async function connect(port: number, opts: mqtt.IClientOptions = {}) {
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, protocolVersion: 5, ...opts });
  clients.push(c);
  return c;
}

/** The CONNACK properties the client got. */
function connack(c: mqtt.MqttClient): Record<string, unknown> {
  return (c as unknown as { connackPacket?: { properties?: Record<string, unknown> } }).connackPacket?.properties ?? {};
}

/** Publishes at QoS 1 and resolves the PUBACK reason code (0 when accepted). */
function pubackCode(c: mqtt.MqttClient, topic: string, payload: string | Buffer): Promise<number> {
  return new Promise((resolve) =>
    c.publish(topic, payload, { qos: 1 }, (err, packet) => {
      resolve(err ? ((err as Error & { code?: number }).code ?? -1) : ((packet as { reasonCode?: number } | undefined)?.reasonCode ?? 0));
    }),
  );
}

describe('LocalBroker with MQTT 5 clients', () => {
  it('advertises its limits in CONNACK and keeps user properties and content type on the event', async () => {
    const { port, stored } = await start({ maxPayloadBytes: 1000 });
    const c = await connect(port);
    expect(connack(c)).toMatchObject({ topicAliasMaximum: 10, receiveMaximum: 1000, maximumPacketSize: 1000 + 65_536 + 1024 + 5 });
    await c.publishAsync('sensors/a', '{"v":1}', {
      qos: 1,
      properties: { userProperties: { site: 'north', tag: ['x', 'y'] }, contentType: 'application/json' },
    });
    await c.publishAsync('sensors/b', '2', { qos: 1 });
    expect(stored).toHaveLength(2);
    expect(stored[0]).toMatchObject({ topic: 'sensors/a', userProperties: { site: 'north', tag: ['x', 'y'] }, contentType: 'application/json' });
    expect(stored[0].payload).toEqual({ v: 1 });
    expect(stored[1].userProperties).toBeUndefined();
  });

  it('answers a publish outside the ACL with PUBACK 0x87 and an oversize one with 0x97, and stays connected', async () => {
    const { port, rejected, stored } = await start({
      allowAnonymous: false,
      maxPayloadBytes: 1000,
      users: [{ username: 's1', passwordHash: await hashPassword('pw'), publish: ['sensors/s1/#'] }],
    });
    const c = await connect(port, { username: 's1', password: 'pw' });
    expect(await pubackCode(c, 'sensors/s2/t', '1')).toBe(0x87);
    expect(await pubackCode(c, 'sensors/s1/t', 'x'.repeat(2000))).toBe(0x97);
    expect(await pubackCode(c, '$SYS/x', '1')).toBe(0x87);
    expect(c.connected).toBe(true);
    expect(await pubackCode(c, 'sensors/s1/t', '7')).toBe(0);
    expect(stored.map((e) => e.topic)).toEqual(['sensors/s1/t']);
    expect(rejected).toMatchObject({ acl_publish: 2, oversize: 1 });
  });

  it('answers a payload flagged UTF-8 that is not with PUBACK 0x99 and neither stores nor delivers it', async () => {
    const { port, rejected, stored } = await start();
    const sub = await connect(port);
    const got: string[] = [];
    sub.on('message', (_t, m) => got.push(m.toString('hex')));
    await sub.subscribeAsync('sensors/#', { qos: 1 });
    const c = await connect(port);
    const code = (payload: Buffer, flagged: boolean) =>
      new Promise<number>((resolve) =>
        c.publish('sensors/f', payload, { qos: 1, properties: flagged ? { payloadFormatIndicator: true } : {} }, (err, p) =>
          resolve(err ? ((err as Error & { code?: number }).code ?? -1) : ((p as { reasonCode?: number } | undefined)?.reasonCode ?? 0)),
        ),
      );
    const bad = Buffer.from([0x7b, 0xff, 0xfe, 0x7d]);
    expect(await code(bad, true)).toBe(0x99);
    expect(await code(Buffer.from('{"v":"é"}'), true)).toBe(0);
    expect(await code(bad, false)).toBe(0); // not flagged: any bytes are a payload
    expect(c.connected).toBe(true);
    expect(rejected.payload_format).toBe(1);
    expect(stored.map((e) => e.body?.toString('hex'))).toEqual([Buffer.from('{"v":"é"}').toString('hex'), bad.toString('hex')]);
    await expect.poll(() => got).toEqual([Buffer.from('{"v":"é"}').toString('hex'), bad.toString('hex')]);
  });

  it('disconnects a packet over the packet limit with DISCONNECT 0x95 (packet too large)', async () => {
    const { port, rejected } = await start({ maxPayloadBytes: 1000 });
    const c = await connect(port);
    const disconnect = new Promise<number | undefined>((r) => c.once('disconnect', (p) => r(p.reasonCode)));
    c.publish('sensors/big', Buffer.alloc(200_000), { qos: 1 });
    expect(await disconnect).toBe(0x95);
    expect(rejected.oversize).toBe(1);
  });

  it('refuses another user taking over a connected client id (CONNACK 0x85); the same user may', async () => {
    const [h1, h2] = await Promise.all([hashPassword('p1'), hashPassword('p2')]);
    const { port, rejected } = await start({
      allowAnonymous: false,
      users: [
        { username: 'u1', passwordHash: h1, publish: ['#'] },
        { username: 'u2', passwordHash: h2, publish: ['#'] },
      ],
    });
    const first = await connect(port, { clientId: 'valve', username: 'u1', password: 'p1' });
    await expect(connect(port, { clientId: 'valve', username: 'u2', password: 'p2' })).rejects.toThrow(/Client Identifier not valid/i);
    expect(rejected.client_id_taken).toBe(1);
    expect(first.connected).toBe(true);
    const kicked = new Promise<number | undefined>((r) => first.once('disconnect', (p) => r(p.reasonCode)));
    await connect(port, { clientId: 'valve', username: 'u1', password: 'p1' });
    expect(await kicked).toBe(0x8e); // session taken over
  });

  it('assigns a unique client id to a zero-length one, on MQTT 5 and 3.1.1', async () => {
    const { port, stored } = await start();
    const a = await connect(port, { clientId: '' });
    const b = await connect(port, { clientId: '' });
    const idA = connack(a).assignedClientIdentifier;
    const idB = connack(b).assignedClientIdentifier;
    expect(idA).toMatch(/.+/);
    expect(idB).toMatch(/.+/);
    expect(idA).not.toBe(idB);
    const old = await connect(port, { clientId: '', protocolVersion: 4, clean: true });
    await old.publishAsync('sensors/z', '1', { qos: 1 });
    await a.publishAsync('sensors/z', '2', { qos: 1 });
    expect(stored).toHaveLength(2);
    expect(a.connected && b.connected && old.connected).toBe(true);
  });

  it('resolves topic aliases to the topic stored', async () => {
    const { port, stored } = await start();
    const c = await connect(port, { autoAssignTopicAlias: true });
    await c.publishAsync('sensors/alias', '1', { qos: 1 });
    await c.publishAsync('sensors/alias', '2', { qos: 1 });
    expect(stored.map((e) => `${e.topic}=${e.body?.toString()}`)).toEqual(['sensors/alias=1', 'sensors/alias=2']);
  });

  it('closes the connection without an ack when the append fails, so the client resends', async () => {
    let fail = true;
    const { port, rejected } = await start({}, async () => {
      if (fail) throw new Error('disk gone');
    });
    const c = await connect(port);
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    let acked = false;
    c.publish('sensors/x', '1', { qos: 1 }, () => {
      acked = true;
    });
    await closed;
    expect(acked).toBe(false);
    expect(rejected.store_failed).toBe(1);
    fail = false;
  });

  it('publishes an MQTT 5 will with a will delay to subscribers without the will-only property', async () => {
    const { port } = await start();
    const sub = await connect(port);
    await sub.subscribeAsync('wills/#');
    const got = new Promise<{ payload: string; props: Record<string, unknown> }>((r) =>
      sub.once('message', (_t, m, p) => r({ payload: m.toString(), props: (p.properties ?? {}) as Record<string, unknown> })),
    );
    const dying = await connect(port, {
      will: { topic: 'wills/a', payload: Buffer.from('gone'), qos: 1, retain: false, properties: { willDelayInterval: 5, contentType: 'text/plain' } },
    });
    // Session expiry 0: the will goes at once, whatever its delay (MQTT 5 3.1.3.2.2).
    (dying as unknown as { stream: { destroy(): void } }).stream.destroy();
    const will = await got;
    expect(will.payload).toBe('gone');
    expect(will.props).toMatchObject({ contentType: 'text/plain' });
    expect(will.props.willDelayInterval).toBeUndefined();
  });

  it('does not send a subscriber a packet larger than the Maximum Packet Size it set', async () => {
    const { port } = await start();
    const sub = await connect(port, { properties: { maximumPacketSize: 100 } });
    const got: string[] = [];
    sub.on('message', (t) => got.push(t));
    await sub.subscribeAsync('m/#', { qos: 1 });
    const pub = await connect(port);
    await pub.publishAsync('m/big', Buffer.alloc(200), { qos: 1 });
    await pub.publishAsync('m/small', Buffer.alloc(20), { qos: 1 });
    await expect.poll(() => got).toEqual(['m/small']);
  });
});
