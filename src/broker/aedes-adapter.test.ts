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
  beforeHandling,
  beforeWriting,
  connectedClient,
  type DeliveredPacket,
  type DeliverFn,
  createAedes,
  isClosed,
  isPersistent,
  limitPacketLength,
  maximumPacketSizeOf,
  pendingWill,
  persistenceOf,
  protocolVersion,
  readControl,
  refusePublishV5,
  replaceDrainWait,
  routeSubscriptions,
  subscriptionOf,
  subscriptionsOf,
  wrapDelivery,
} from './aedes-adapter.js';
import { interceptPublishes } from './aedes-adapter.js';
import { type RawClient, rawConnect } from '../../test/faults/raw-client.js';

let aedes: Aedes | undefined;
let server: Server | undefined;
const clients: mqtt.MqttClient[] = [];
const raws: RawClient[] = [];
afterEach(async () => {
  for (const r of raws.splice(0)) r.sock.destroy();
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
      'addSubscriptions',
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

  it('MQTT 5: records the Maximum Packet Size a client declared (authorizeForward enforces it)', async () => {
    const { broker, port } = await start();
    await connect(port, { clientId: 'v5', protocolVersion: 5, properties: { maximumPacketSize: 512 } });
    await connect(port, { clientId: 'v4' });
    expect(maximumPacketSizeOf(connectedClient(broker, 'v5')!)).toBe(512);
    expect(maximumPacketSizeOf(connectedClient(broker, 'v4')!)).toBeUndefined();
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

  it('MQTT 5: a DISCONNECT with a reason code is sent also while a resumed session queue is still being sent after the CONNACK', async () => {
    const { broker, port } = await start();
    const sub = await connect(port, { protocolVersion: 5, clientId: 'early', properties: { sessionExpiryInterval: 60 } });
    await sub.subscribeAsync('q/#', { qos: 1 });
    await sub.endAsync();
    const pub = await connect(port, { protocolVersion: 5 });
    await pub.publishAsync('q/1', 'queued', { qos: 1 });
    // Hold aedes' last connect step (sending the queue) open: it stores each queued packet first.
    const persistence = persistenceOf(broker);
    const update = persistence.outgoingUpdate.bind(persistence);
    persistence.outgoingUpdate = async (client, packet) => {
      await new Promise((r) => setTimeout(r, 500));
      return update(client, packet);
    };
    const states: string[] = [];
    broker.on('clientError', (client) => states.push(`connecting ${(client as unknown as { connecting: boolean }).connecting}`));
    const raw = await rawConnect(port, { version: 5 });
    raws.push(raw);
    // Clean Start 0: the session is resumed, and aedes sends its queue after the CONNACK.
    raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: false, clientId: 'early', keepalive: 60, properties: {} });
    expect((await raw.next('connack')) as { sessionPresent: boolean }).toMatchObject({ sessionPresent: true });
    raw.send({ cmd: 'publish', topic: 't', payload: Buffer.from('x'), qos: 1, messageId: 1, retain: false, dup: false, properties: { topicAlias: 0 } });
    expect(await raw.next('disconnect')).toMatchObject({ reasonCode: 0x94 }); // Topic Alias invalid
    expect(states).toEqual(['connecting true']); // refused within the window, before the queue went out
  });

  it('MQTT 5: aedes itself refuses $share/ (SUBACK 0x9E) and says so in CONNACK (why shared-subscriptions.ts exists)', async () => {
    const { port } = await start();
    const c = await connect(port, { protocolVersion: 5 });
    expect((c as unknown as { connackPacket: { properties?: Record<string, unknown> } }).connackPacket.properties?.sharedSubscriptionAvailable).toBe(false);
    const granted = await c.subscribeAsync('$share/g/x', { qos: 1 }).then(
      (g) => g.map((x) => x.qos),
      (err: { packet?: { granted?: number[] } }) => err.packet?.granted,
    );
    expect(granted).toEqual([0x9e]);
  });

  it('shows a client packet before aedes handles it, and a packet aedes writes before it is encoded (SUBACK codes in the order of the packet)', async () => {
    const written: string[] = [];
    const { broker, port } = await start((client) => {
      expect(
        beforeHandling(client, (p) => {
          if (p.cmd === 'subscribe') for (const s of p.subscriptions) s.topic = s.topic.replace('asked', 'held');
        }),
      ).toBe(true);
      beforeWriting(client, (p) => {
        written.push(p.cmd);
        if (p.cmd === 'connack' && p.properties) p.properties.sharedSubscriptionAvailable = true;
        if (p.cmd === 'suback') (p.granted as number[])[2] = 0x8f;
      });
    });
    broker.authorizeSubscribe = (_client, sub, done) => done(null, sub.topic === 'no' ? null : sub);
    const c = await connect(port, { protocolVersion: 5, clientId: 'hooked' });
    expect((c as unknown as { connackPacket: { properties?: Record<string, unknown> } }).connackPacket.properties?.sharedSubscriptionAvailable).toBe(true);
    const granted = await c.subscribeAsync({ 'asked/a': { qos: 1 }, no: { qos: 1 }, 'asked/b': { qos: 0 }, c: { qos: 2 } }).then(
      (g) => g.map((x) => x.qos),
      (err: { packet?: { granted?: number[] } }) => err.packet?.granted,
    );
    expect(granted).toEqual([1, 0x87, 0x8f, 2]);
    expect(Object.keys(subscriptionsOf(connectedClient(broker, 'hooked')!)).sort()).toEqual(['c', 'held/a', 'held/b']);
    expect(written).toEqual(['connack', 'suback']);
  });

  it('routes the delivery functions aedes registers for chosen topics: on SUBSCRIBE, UNSUBSCRIBE, disconnect and a restored session', async () => {
    const { broker, port } = await start();
    const log: string[] = [];
    const registered = new Map<string, DeliverFn>();
    const emitter = routeSubscriptions(broker, {
      claims: (topic) => topic.startsWith('routed/'),
      add: (topic, deliver, done) => {
        log.push(`add ${topic}`);
        registered.set(topic, deliver);
        done();
      },
      remove: (topic, deliver, done) => {
        log.push(`remove ${topic} ${registered.get(topic) === deliver}`);
        done();
      },
    });
    const opts = { clientId: 'r', clean: false };
    const c = await connect(port, opts);
    const got: Array<[string, number]> = [];
    c.on('message', (t, _m, p) => got.push([t, p.qos]));
    await c.subscribeAsync({ 'routed/1': { qos: 1 }, plain: { qos: 1 } });
    const sub = subscriptionOf(connectedClient(broker, 'r')!, 'routed/1');
    expect(sub?.qos).toBe(1);
    expect(sub?.deliver).toBe(registered.get('routed/1'));

    // Listening on aedes' emitter directly: packets carry brokerId and brokerCounter, and a delivery
    // function takes a copy (own properties) at a lower QoS.
    const seen: DeliveredPacket[] = [];
    const listener: DeliverFn = (packet, cb) => {
      seen.push(packet);
      sub!.deliver({ ...packet, qos: 0 }, cb);
    };
    await new Promise<void>((r) => emitter.listen('data/x', listener, r));
    const pub = await connect(port);
    await pub.publishAsync('data/x', 'v', { qos: 1 });
    await pub.publishAsync('plain', 'p', { qos: 1 });
    await expect.poll(() => got).toEqual([
      ['data/x', 0],
      ['plain', 1],
    ]);
    expect(seen[0]).toMatchObject({ topic: 'data/x', qos: 1, brokerId: broker.id });
    expect(seen[0].brokerCounter).toBeGreaterThan(0);
    await new Promise<void>((r) => emitter.unlisten('data/x', listener, r));

    await c.unsubscribeAsync('routed/1');
    await c.subscribeAsync('routed/2', { qos: 1 });
    await c.endAsync();
    await expect.poll(() => connectedClient(broker, 'r')).toBeUndefined();
    await connect(port, opts); // the session's routed/2 is restored
    await expect.poll(() => log).toEqual(['add routed/1', 'remove routed/1 true', 'add routed/2', 'remove routed/2 true', 'add routed/2']);
  });
});

describe('aedes adapter: outbound publishes (flow control)', () => {
  it('routes every PUBLISH written to an MQTT 5 client through send, also a resumed session queue, and shows its acknowledgements and Receive Maximum', async () => {
    const sent: { id: string; qos?: number; messageId?: number; payload: string }[] = [];
    const received: string[] = [];
    const limits = new Map<string, () => number | undefined>();
    const { port } = await start((client, conn) => {
      const hooked = interceptPublishes(client, conn, {
        send: (packet, write) => {
          sent.push({ id: client.id, qos: packet.qos, messageId: packet.messageId, payload: String(packet.payload) });
          return write(packet);
        },
        received: (packet) => received.push(`${client.id}:${packet.cmd}`),
      });
      expect(hooked).not.toBe(false);
      if (hooked) limits.set(String(limits.size), hooked.receiveMaximum);
    });
    const opts = { clientId: 'flow-sub', protocolVersion: 5 as const, clean: false, properties: { receiveMaximum: 2, sessionExpiryInterval: 60 } };
    const sub = await connect(port, opts);
    await sub.subscribeAsync('f/#', { qos: 1 });
    const got: string[] = [];
    sub.on('message', (_t, p) => got.push(p.toString()));
    const pub = await connect(port, { protocolVersion: 4, clientId: 'v311' });
    await pub.subscribeAsync('f/#', { qos: 1 });
    const own = new Promise((r) => pub.once('message', r));
    await pub.publishAsync('f/1', 'live', { qos: 1 });
    await expect.poll(() => got).toEqual(['live']);
    await own;
    expect(sent.filter((s) => s.id === 'v311')).toEqual([]); // MQTT 3.1.1: not routed
    expect(sent).toContainEqual({ id: 'flow-sub', qos: 1, messageId: expect.any(Number), payload: 'live' });
    await expect.poll(() => received).toContain('flow-sub:puback');
    expect([...limits.values()].map((f) => f())).toEqual([2, undefined]); // MQTT 5 with 2; MQTT 3.1.1
    await sub.endAsync();
    await pub.publishAsync('f/2', 'queued', { qos: 1 });
    const back = await connect(port, opts);
    const resent = new Promise((r) => back.once('message', r));
    await resent;
    expect(sent.filter((s) => s.payload === 'queued')).toEqual([{ id: 'flow-sub', qos: 1, messageId: expect.any(Number), payload: 'queued' }]);
    const v5 = await connect(port, { protocolVersion: 5 });
    expect(v5.connected).toBe(true);
    expect([...limits.values()].at(-1)!()).toBe(65_535); // the default when absent
  });
});
