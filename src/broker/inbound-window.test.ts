/**
 * The broker's Receive Maximum on what clients send: an MQTT 5 client may have at most the
 * advertised 1000 publishes unacknowledged (QoS 1) or unreleased (QoS 2); an MQTT 3.1.1 client at
 * most 1000 QoS 2 ones unreleased (held in memory). Raw clients: they send exactly what the test
 * says, pipelined, and never a PUBREL unless told.
 */
import mqtt from 'mqtt';
import type mqttPacket from 'mqtt-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../test/helpers/peers.js';
import { type RawClient, rawConnect } from '../../test/faults/raw-client.js';
import { silentLogger } from '../core/log.js';
import { LocalBroker } from './index.js';
import { brokerSchema } from './schema.js';

const MAX = 1000;
const brokers: LocalBroker[] = [];
const raws: RawClient[] = [];
const clients: mqtt.MqttClient[] = [];
afterEach(async () => {
  for (const r of raws.splice(0)) r.sock.destroy();
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
  await Promise.all(brokers.splice(0).map((b) => b.stop()));
});

/**
 * `hold`: the log does not finish any append until `release` (QoS 1 acknowledgements wait);
 * `fail`: every append fails, a moment after it was made.
 */
async function start(hold = false, fail = false) {
  const port = await freePort();
  const rejected: Record<string, number> = {};
  const stored: string[] = [];
  let release = () => {};
  const held = new Promise<void>((r) => (release = r));
  const broker = new LocalBroker(brokerSchema.parse({ listeners: [{ host: '127.0.0.1', port }], ingest: ['sensors/#'] }), {
    logger: silentLogger,
    ingest: async (events) => {
      for (const e of events) stored.push(String((e as { body?: Buffer }).body));
      if (hold) await held;
      if (fail) await new Promise((r) => setTimeout(r, 100)).then(() => Promise.reject(new Error('disk gone')));
    },
    countRejected: (reason, n = 1) => {
      rejected[reason] = (rejected[reason] ?? 0) + n;
    },
  });
  await broker.start();
  brokers.push(broker);
  return { port, rejected, stored, release };
}

async function publisher(port: number, version: 4 | 5) {
  const c = await rawConnect(port, { version });
  raws.push(c);
  c.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clean: true, clientId: `qos2-${version}`, keepalive: 60 });
  await c.next('connack');
  return c;
}

const publish = (c: RawClient, id: number, dup = false, qos: 1 | 2 = 2) =>
  c.send({ cmd: 'publish', topic: 'sensors/q2', payload: Buffer.from(`m${id}`), qos, messageId: id, retain: false, dup });

async function pubrecs(c: RawClient, n: number) {
  for (let i = 0; i < n; i++) await c.next('pubrec');
}

describe('Receive Maximum on what clients send (QoS 2 without PUBREL)', () => {
  it('MQTT 5: the publish past the maximum gets DISCONNECT 0x93 and is neither stored nor delivered', async () => {
    const { port, rejected, stored } = await start();
    const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, protocolVersion: 5 });
    clients.push(sub);
    const delivered: string[] = [];
    sub.on('message', (_t, p) => delivered.push(p.toString()));
    await sub.subscribeAsync('sensors/q2', { qos: 2 });
    const c = await publisher(port, 5);
    for (let id = 1; id <= MAX; id++) publish(c, id);
    await pubrecs(c, MAX);
    // a copy of a held one, re-sent before its PUBREL, is not new: answered again, not refused
    publish(c, 7, true);
    await c.next('pubrec');
    publish(c, MAX + 1);
    const disconnect = (await c.next('disconnect')) as mqttPacket.IDisconnectPacket;
    expect(disconnect.reasonCode).toBe(0x93);
    expect(await c.closed).toBe('close');
    expect(rejected.receive_maximum).toBe(1);
    expect(stored).toHaveLength(MAX);
    expect(stored).not.toContain(`m${MAX + 1}`);
    await new Promise((r) => setTimeout(r, 300));
    expect(delivered).not.toContain(`m${MAX + 1}`);
  });

  it('answers a QoS 2 copy re-sent before PUBREL only once its first copy is stored, and not if that failed', async () => {
    const { port, stored, release } = await start(true);
    const c = await publisher(port, 4);
    publish(c, 7);
    publish(c, 7, true);
    await new Promise((r) => setTimeout(r, 300));
    // the PUBREC acknowledges the message: not for the copy while the first is not durable
    expect(c.packets.filter((p) => p.cmd === 'pubrec')).toHaveLength(0);
    release();
    await pubrecs(c, 2);
    expect(stored).toEqual(['m7']);

    const failing = await start(false, true);
    const f = await publisher(failing.port, 4);
    publish(f, 8);
    publish(f, 8, true);
    expect(await f.closed).toBe('close');
    expect(f.packets.filter((p) => p.cmd === 'pubrec')).toHaveLength(0);
  });

  it('a PUBREL makes room again', async () => {
    const { port, rejected } = await start();
    const c = await publisher(port, 5);
    for (let id = 1; id <= MAX; id++) publish(c, id);
    await pubrecs(c, MAX);
    c.send({ cmd: 'pubrel', messageId: 1 });
    await c.next('pubcomp');
    publish(c, MAX + 1);
    await c.next('pubrec');
    expect(c.isClosed()).toBe(false);
    expect(rejected.receive_maximum).toBeUndefined();
  });

  it('MQTT 5: QoS 1 publishes waiting for their acknowledgement count too', async () => {
    const { port, rejected, stored, release } = await start(true);
    const c = await publisher(port, 5);
    for (let id = 1; id <= MAX + 1; id++) publish(c, id, false, 1);
    const disconnect = (await c.next('disconnect')) as mqttPacket.IDisconnectPacket;
    expect(disconnect.reasonCode).toBe(0x93);
    release();
    expect(rejected.receive_maximum).toBe(1);
    expect(stored).toHaveLength(MAX);
  });

  it('MQTT 3.1.1: QoS 1 publishes are not limited (3.1.1 has no Receive Maximum)', async () => {
    const { port, rejected, release } = await start(true);
    const c = await publisher(port, 4);
    for (let id = 1; id <= MAX + 500; id++) publish(c, id, false, 1);
    await new Promise((r) => setTimeout(r, 500));
    release();
    for (let i = 0; i < MAX + 500; i++) await c.next('puback');
    expect(c.isClosed()).toBe(false);
    expect(rejected.receive_maximum).toBeUndefined();
  });

  it('MQTT 3.1.1: the QoS 2 publish past the maximum closes the connection', async () => {
    const { port, rejected } = await start();
    const c = await publisher(port, 4);
    for (let id = 1; id <= MAX; id++) publish(c, id);
    await pubrecs(c, MAX);
    publish(c, MAX + 1);
    expect(await c.closed).toBe('close');
    expect(c.packets.filter((p) => p.cmd === 'pubrec')).toHaveLength(MAX);
    expect(rejected.receive_maximum).toBe(1);
  });
});
