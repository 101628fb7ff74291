/**
 * The aedes internals the broker's guards rely on, checked against the installed aedes with real
 * clients: if an aedes upgrade renames or reshapes one, this fails naming it (instead of a guard
 * silently doing nothing).
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { Aedes, Client } from 'aedes';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import {
  connectedClient,
  createAedes,
  isClosed,
  isPersistent,
  limitPacketLength,
  pendingWill,
  persistenceOf,
  protocolVersion,
  readControl,
  refusePublishV5,
  replaceDrainWait,
  subscriptionsOf,
  wrapDelivery,
} from './aedes-adapter.js';

let aedes: Aedes | undefined;
let server: Server | undefined;
const clients: mqtt.MqttClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  await new Promise<void>((r) => (aedes ? aedes.close(() => r()) : r()));
  server = aedes = undefined;
});

/** An aedes on a free port; `onClient` sees each client as aedes makes it, with its socket. */
async function start(onClient: (client: Client, conn: Socket) => void = () => {}) {
  const broker = await createAedes({});
  aedes = broker;
  const srv = createServer((conn) => onClient(broker.handle(conn), conn));
  server = srv;
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  return { broker, port: (srv.address() as { port: number }).port };
}

async function connect(port: number, opts: mqtt.IClientOptions = {}) {
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, ...opts });
  clients.push(c);
  return c;
}

describe('aedes adapter', () => {
  it('reaches aedes persistence with every method the guards wrap, as promises', async () => {
    const { broker } = await start();
    const p = persistenceOf(broker) as unknown as Record<string, unknown>;
    for (const m of [
      'storeRetained',
      'outgoingEnqueue',
      'outgoingEnqueueCombi',
      'outgoingClearMessageId',
      'outgoingUpdate',
      'incomingGetPacket',
      'incomingDelPacket',
      'cleanSubscriptions',
    ]) {
      expect(typeof p[m], `persistence.${m}`).toBe('function');
    }
    // The promise API (aedes-persistence ≥ 10): a guard awaits these.
    const got = (p.incomingGetPacket as (c: object, pk: object) => Promise<unknown>)({ id: 'x' }, { messageId: 1 });
    expect(got).toBeInstanceOf(Promise);
    await expect(got).rejects.toThrow();
  });

  it('finds connected clients by id, their session flag, protocol and subscriptions, and the will while connecting', async () => {
    let seenWill: unknown;
    const { broker, port } = await start();
    broker.authenticate = (client, _u, _p, done) => {
      seenWill = pendingWill(client);
      done(null, true);
    };
    const c = await connect(port, { clientId: 'dev-1', clean: false, will: { topic: 'w/t', payload: Buffer.from('bye'), qos: 0, retain: false } });
    await c.subscribeAsync('a/#');
    expect(seenWill).toMatchObject({ topic: 'w/t' });
    const client = connectedClient(broker, 'dev-1');
    expect(client?.id).toBe('dev-1');
    expect(isPersistent(client!)).toBe(true);
    expect(protocolVersion(client!)).toBe(4);
    expect(Object.keys(subscriptionsOf(client!))).toEqual(['a/#']);
    expect(connectedClient(broker, 'nobody')).toBeUndefined();
    const clean = await connect(port, { clientId: 'dev-2', clean: true });
    expect(isPersistent(connectedClient(broker, 'dev-2')!)).toBe(false);
    await clean.endAsync();
    await expect.poll(() => connectedClient(broker, 'dev-2')).toBeUndefined();
  });

  it('holds and wakes a client read loop', async () => {
    let held = true;
    let wake: (() => void) | undefined;
    let gated: Client | undefined;
    const { broker, port } = await start((client, conn) => {
      gated = client;
      wake = readControl(client, conn, () => held && client.id === 'held')?.wake;
    });
    const got: string[] = [];
    broker.authorizePublish = (_c, packet, done) => {
      got.push(packet.topic);
      done(null);
    };
    const c = await connect(port, { clientId: 'held' });
    expect(wake).toBeTypeOf('function');
    c.publish('t/1', 'x', { qos: 0 });
    await new Promise((r) => setTimeout(r, 300));
    expect(got).toEqual([]);
    held = false;
    wake!();
    await expect.poll(() => got).toEqual(['t/1']);
    expect(isClosed(gated!)).toBe(false);
  });

  it('lets the drain wait and the delivery of retained messages be replaced', async () => {
    const delivered: boolean[] = [];
    let replaced = false;
    const { broker, port } = await start((client) => {
      replaced = replaceDrainWait(client, (cb) => setImmediate(cb, null, client));
      wrapDelivery(client, (deliver) => (packet, cb) => {
        delivered.push(!!packet.retain);
        deliver(packet, cb);
      });
    });
    expect(broker).toBeDefined();
    const pub = await connect(port);
    await pub.publishAsync('r/1', 'kept', { qos: 1, retain: true });
    const sub = await connect(port);
    const msg = new Promise((r) => sub.once('message', r));
    await sub.subscribeAsync('r/#', { qos: 1 });
    await msg;
    expect(replaced).toBe(true);
    expect(delivered).toEqual([true]);
  });

  it('refuses a packet from its declared length, before its body arrives', async () => {
    const errors: string[] = [];
    let installed = false;
    const { port } = await start((client) => {
      installed = limitPacketLength(client, 1000, (bytes) => errors.push(`too large: ${bytes}`), (err) => errors.push(err.message));
    });
    const c = await connect(port);
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    // A PUBLISH header claiming 1 MiB, then only a few bytes of it.
    (c as unknown as { stream: Socket }).stream.write(Buffer.from([0x30, 0x80, 0x80, 0x40, 0x00, 0x01, 0x61]));
    await closed;
    expect(installed).toBe(true);
    expect(errors).toEqual(['too large: 1048576']);
  });

  it('MQTT 5: a publish refused with a reason code is acknowledged once with it and not delivered; an oversize packet gets DISCONNECT 0x95', async () => {
    const { broker, port } = await start((client) => {
      limitPacketLength(client, 1000, () => {}, () => {});
    });
    broker.authorizePublish = (client, packet, done) => {
      if (client && packet.topic === 'no') refusePublishV5(client, packet, 0x97, () => done(null));
      else done(null);
    };
    const sub = await connect(port, { protocolVersion: 5 });
    const got: string[] = [];
    sub.on('message', (t) => got.push(t));
    await sub.subscribeAsync('#');
    const pub = await connect(port, { protocolVersion: 5 });
    expect(protocolVersion(connectedClient(broker, pub.options.clientId!)!)).toBe(5);
    const acks: number[] = [];
    pub.on('packetreceive', (p) => {
      if (p.cmd === 'puback') acks.push((p as { reasonCode?: number }).reasonCode ?? 0);
    });
    await pub.publishAsync('no', 'x', { qos: 1 }).catch(() => {});
    await pub.publishAsync('yes', 'x', { qos: 1 });
    await expect.poll(() => got).toEqual(['yes']);
    expect(acks).toEqual([0x97, 0]);
    const disconnect = new Promise<number | undefined>((r) => pub.once('disconnect', (p) => r(p.reasonCode)));
    pub.publish('big', Buffer.alloc(5000), { qos: 0 });
    expect(await disconnect).toBe(0x95);
  });
});
