/**
 * Shared subscriptions (`$share/<group>/<filter>`) on the local broker, with real mqtt.js clients
 * (MQTT 5, and 3.1.1): each message to one member of each group, in turn; groups and normal
 * subscribers each get their copy; members leave on UNSUBSCRIBE and disconnect; ACLs, malformed
 * filters and persistent sessions.
 */
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../test/helpers/peers.js';
import { silentLogger } from '../core/log.js';
import { hashPassword } from '../auth/password.js';
import { LocalBroker } from './index.js';
import { brokerSchema } from './schema.js';
import { heldTopic, sharedFilterOf } from './shared-subscriptions.js';

const brokers: LocalBroker[] = [];
const clients: mqtt.MqttClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
  await Promise.all(brokers.splice(0).map((b) => b.stop()));
});

async function start(config: Record<string, unknown> = {}) {
  const port = await freePort();
  const rejected: Record<string, number> = {};
  const broker = new LocalBroker(brokerSchema.parse({ listeners: [{ host: '127.0.0.1', port }], ...config }), {
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

/** A client that records the payloads (and QoS) it receives. */
async function member(port: number, filter: string, opts: mqtt.IClientOptions = {}, qos: 0 | 1 | 2 = 1) {
  const c = await connect(port, opts);
  const got: string[] = [];
  const qoses: number[] = [];
  c.on('message', (_t, m, p) => {
    got.push(m.toString());
    qoses.push(p.qos);
  });
  const granted = await c.subscribeAsync(filter, { qos });
  return { c, got, qoses, granted: granted.map((g) => g.qos) };
}

async function publishAll(c: mqtt.MqttClient, topic: string, from: number, to: number, qos: 0 | 1 = 1) {
  for (let i = from; i < to; i++) await c.publishAsync(topic, String(i), { qos });
}

/** The SUBACK's codes for these filters (mqtt.js rejects a SUBACK carrying a refusal, with the packet). */
async function subackCodes(c: mqtt.MqttClient, filters: string[], opts: { qos: 0 | 1 | 2; nl?: boolean } = { qos: 1 }): Promise<number[]> {
  try {
    return (await c.subscribeAsync(Object.fromEntries(filters.map((f) => [f, opts])))).map((g) => g.qos);
  } catch (err) {
    const granted = (err as { packet?: { granted?: number[] } }).packet?.granted;
    if (!granted) throw err;
    return granted;
  }
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => String(from + i));
const sorted = (xs: string[]) => [...xs].sort((a, b) => Number(a) - Number(b));

describe('shared subscriptions', () => {
  it('splits a filter among a group in turn; each group and each normal subscriber get every message; no retained on subscribing', async () => {
    const { port } = await start();
    const pub = await connect(port);
    await pub.publishAsync('jobs/old', 'retained', { qos: 1, retain: true });
    const a = await member(port, '$share/workers/jobs/#');
    expect((a.c as unknown as { connackPacket: { properties: Record<string, unknown> } }).connackPacket.properties.sharedSubscriptionAvailable).toBe(true);
    const b = await member(port, '$share/workers/jobs/#');
    const c = await member(port, '$share/workers/jobs/#', {}, 0);
    const audit = await member(port, '$share/audit/jobs/+');
    const plain = await member(port, 'jobs/#');
    expect([a.granted, b.granted, c.granted, audit.granted, plain.granted]).toEqual([[1], [1], [0], [1], [1]]);

    await publishAll(pub, 'jobs/x', 0, 30);
    await expect.poll(() => a.got.length + b.got.length + c.got.length).toBe(30);
    await expect.poll(() => audit.got.length).toBe(30);
    await expect.poll(() => plain.got.length).toBe(31); // and the retained one, on subscribing
    await new Promise((r) => setTimeout(r, 100)); // nothing more arrives
    // Disjoint, together all, in turn (10 each), none of them the retained message.
    expect(sorted([...a.got, ...b.got, ...c.got])).toEqual(range(0, 30));
    expect([a.got.length, b.got.length, c.got.length]).toEqual([10, 10, 10]);
    expect(sorted(audit.got)).toEqual(range(0, 30));
    expect(plain.got[0]).toBe('retained');
    // QoS: the lower of the publish's and the member's.
    expect(new Set(a.qoses)).toEqual(new Set([1]));
    expect(new Set(c.qoses)).toEqual(new Set([0]));
  });

  it('a member leaves on UNSUBSCRIBE and on disconnect; the others share what follows', async () => {
    const { port } = await start();
    const pub = await connect(port);
    const a = await member(port, '$share/g/t');
    const b = await member(port, '$share/g/t');
    await publishAll(pub, 't', 0, 4);
    await expect.poll(() => [a.got.length, b.got.length]).toEqual([2, 2]);

    const unsub = await a.c.unsubscribeAsync('$share/g/t');
    expect((unsub as { reasonCode?: number } | undefined)?.reasonCode ?? 0).toBe(0);
    await publishAll(pub, 't', 4, 8);
    await expect.poll(() => b.got.length).toBe(6);
    expect(a.got).toHaveLength(2);

    const c = await member(port, '$share/g/t');
    await publishAll(pub, 't', 8, 12);
    await expect.poll(() => [b.got.length, c.got.length]).toEqual([8, 2]);

    await c.c.endAsync();
    await publishAll(pub, 't', 12, 16);
    await expect.poll(() => b.got.length).toBe(12);
    expect(sorted([...a.got, ...b.got, ...c.got])).toEqual(range(0, 16));
  });

  it('checks the ACL on the filter (SUBACK 0x87), refuses a malformed share (0x8F) and counts it within the subscription limit', async () => {
    const { port, rejected } = await start({
      allowAnonymous: false,
      maxSubscriptionsPerClient: 2,
      users: [
        { username: 'app', passwordHash: await hashPassword('pw'), subscribe: ['sensors/#'], publish: ['sensors/#'] },
      ],
    });
    const c = await connect(port, { username: 'app', password: 'pw' });
    const codes = (...filters: string[]) => subackCodes(c, filters);
    expect(await codes('$share/g/sensors/#', '$share/g/secret/#', '$share/g/$SYS/#')).toEqual([1, 0x87, 0x87]);
    expect(await codes('$share/+/sensors/a', '$share//sensors/a', '$share/g', '$share/g/')).toEqual([0x8f, 0x8f, 0x8f, 0x8f]);
    expect(await codes('$share/h/sensors/a', '$share/i/sensors/a')).toEqual([1, 0x87]); // the limit: 2
    expect(rejected).toMatchObject({ acl_subscribe: 2, malformed_subscription: 4, max_subscriptions: 1 });
    // No Local on a shared subscription is a protocol error (MQTT-3.8.3-4): refused, connected.
    expect(await subackCodes(c, ['$share/g/sensors/a'], { qos: 1, nl: true })).toEqual([0x8f]);
    expect(c.connected).toBe(true);
  });

  it('keeps a persistent session member across a reconnect, and resends it the copy it had not acknowledged', async () => {
    const { port } = await start();
    const pub = await connect(port);
    const opts = { clientId: 'worker-1', clean: false, properties: { sessionExpiryInterval: 300 } };
    // worker-1 receives, and does not acknowledge, its first message.
    const held: string[] = [];
    const a = await connect(port, { ...opts, customHandleAcks: (_t: string, m: Buffer) => held.push(m.toString()) });
    await a.subscribeAsync('$share/g/p', { qos: 1 });
    const b = await member(port, '$share/g/p');
    await publishAll(pub, 'p', 0, 2);
    await expect.poll(() => [held.length, b.got.length]).toEqual([1, 1]);
    await a.endAsync(true);
    await publishAll(pub, 'p', 2, 4); // both to b: worker-1 is not connected
    await expect.poll(() => b.got.length).toBe(3);

    const got: string[] = [];
    const again = await connect(port, opts);
    again.on('message', (_t, m) => got.push(m.toString()));
    expect((again as unknown as { connackPacket: { sessionPresent: boolean } }).connackPacket.sessionPresent).toBe(true);
    await expect.poll(() => got).toEqual(held); // resent on reconnect
    await publishAll(pub, 'p', 4, 8); // no SUBSCRIBE: the session's shared subscription is back
    await expect.poll(() => got.length + b.got.length).toBe(8);
    expect(got.length).toBe(3);
    expect(sorted([...got, ...b.got])).toEqual(range(0, 8));
  });

  it('works for MQTT 3.1.1 clients too', async () => {
    const { port } = await start();
    const pub = await connect(port, { protocolVersion: 4 });
    const a = await member(port, '$share/g/v3', { protocolVersion: 4 });
    const b = await member(port, '$share/g/v3', { protocolVersion: 4 });
    expect([a.granted, b.granted]).toEqual([[1], [1]]);
    expect(await subackCodes(a.c, ['$share/+/v3'])).toEqual([0x80]);
    await publishAll(pub, 'v3', 0, 6);
    await expect.poll(() => [a.got.length, b.got.length]).toEqual([3, 3]);
    expect(sorted([...a.got, ...b.got])).toEqual(range(0, 6));
  });
});

describe('held topic filters', () => {
  it('holds $share/g/f, marks malformed ones and one naming the held form, leaves others alone', () => {
    expect(sharedFilterOf(heldTopic('$share/g/a/+/b', false, 0))).toEqual({ group: 'g', filter: 'a/+/b' });
    expect(sharedFilterOf(heldTopic('$share/g/#', false, 0))).toEqual({ group: 'g', filter: '#' });
    for (const bad of ['$share/g', '$share/g/', '$share//a', '$share/#/a', '$share/g+/a', '$share\u0000/g/a']) {
      expect(sharedFilterOf(heldTopic(bad, false, 0)), bad).toBe('malformed');
    }
    expect(sharedFilterOf(heldTopic('$share/g/a', true, 0))).toBe('malformed');
    expect(heldTopic('a/$share/g/b', false, 0)).toBe('a/$share/g/b');
    expect(sharedFilterOf('$share/g/a')).toBeUndefined();
  });
});
