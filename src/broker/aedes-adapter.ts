/**
 * Every use of aedes beyond its documented API, in one place.
 *
 * The broker's guards need a few of aedes' internals: its persistence object (wrapped by the
 * retained, session-queue and QoS 2 guards), its table of connected clients (takeover check), a
 * connecting client's will and session flag, a client's packet parser (length limit), its read
 * loop (read gate), its drain wait (slow-consumer guard) and its delivery function (retained
 * pacing), and for MQTT 5 the flag that tells aedes a refused publish was answered already and
 * its DISCONNECT for a packet too large; for shared subscriptions (shared-subscriptions.ts) the
 * packets a client sends before aedes handles them and the packets aedes writes to it before they
 * are encoded, where aedes registers each subscription's delivery function, and a client's record
 * of one subscription; and, to correct its connect sequence (completeConnects), a client's
 * `connected`, `clean` and Clean Start flags between its CONNACK and the end of that sequence.
 * aedes-adapter.test.ts asserts that each exists and behaves as used here, so an aedes
 * upgrade that changes one fails there, by name, instead of silently disabling a guard.
 */
import type { Duplex, Readable, Writable } from 'node:stream';
import { Aedes, type AedesOptions, type Client } from 'aedes';
import mqttPacket from 'mqtt-packet';

// mqtt-packet otherwise pre-builds 65,536 two-byte Buffers for packet ids on first use: 6 MB of
// heap objects that every major garbage collection marks again, to save one tiny allocation per
// PUBACK (the gateway's heap after a full GC drops by about a fifth without them).
mqttPacket.writeToStream.cacheNumbers = false;

/**
 * mqtt-packet's `writeToStream`, wrapped once. aedes writes every packet to a client through it
 * (lib/write.js), looked up on the module at each call, and the module is the one installed here
 * (aedes has no copy of its own): that is the only way to amend a packet aedes builds itself (its
 * CONNACK properties: beforeWriting) and the only way out for a resumed session's queue, which
 * bypasses `deliverQoS` (outbound flow control: interceptPublishes).
 */
const writeHooks = new WeakMap<object, (packet: mqttPacket.Packet) => void>();
const publishHooks = new WeakMap<object, (packet: OutboundPublish, write: (packet: OutboundPublish) => boolean) => boolean>();
const encode = mqttPacket.writeToStream;
(mqttPacket as { writeToStream: typeof encode }).writeToStream = Object.assign(
  function writeToStream(packet: mqttPacket.Packet, stream: Parameters<typeof encode>[1], opts?: object): boolean {
    writeHooks.get(stream)?.(packet);
    const send = packet.cmd === 'publish' ? publishHooks.get(stream) : undefined;
    return send ? send(packet as OutboundPublish, (p) => encode(p as mqttPacket.Packet, stream, opts)) : encode(packet, stream, opts);
  },
  { cacheNumbers: false },
);

/** The slice of aedes-persistence's async API the guards wrap (retained, session queues, QoS 2). */
export interface BrokerPersistence {
  storeRetained(packet: { topic: string; payload: Buffer | string }): Promise<void>;
  outgoingEnqueue(sub: { clientId: string }, packet: QueuedPacket): Promise<void>;
  outgoingEnqueueCombi(subs: { clientId: string }[], packet: QueuedPacket): Promise<void>;
  outgoingClearMessageId(client: { id: string }, packet: unknown): Promise<QueuedPacket | undefined>;
  outgoingUpdate(client: { id: string }, packet: unknown): Promise<void>;
  incomingGetPacket(client: { id: string }, packet: { messageId?: number }): Promise<unknown>;
  incomingDelPacket(client: unknown, packet: { messageId?: number }): Promise<void>;
  cleanSubscriptions(client: { id: string }): Promise<void>;
  addSubscriptions(client: { id: string }, subs: object[]): Promise<void>;
}

export interface QueuedPacket {
  payload?: Buffer | string;
  topic?: string;
}

/** What the broker keeps on an aedes client (its own fields are prefixed `sluice`). */
export type AedesClient = Client & { sluiceUser?: unknown; sluiceGranted?: Map<string, number> };

interface ClientInternals {
  id: string;
  closed?: boolean;
  clean?: boolean;
  _cleanStart?: boolean;
  sessionExpiryInterval?: number;
  version?: number;
  maximumPacketSize?: number;
  _will?: { topic: string; payload?: Buffer | string } | null;
  connected?: boolean;
  rejectPacketTooLarge?: (size: number) => void;
  _nextBatch?: () => void;
  waitForDrain?: (callback: (err: Error | null, client: unknown) => void) => void;
  deliverQoS?: (packet: { retain?: boolean }, cb: (err?: Error | null) => void) => void;
  subscriptions?: Record<string, { qos?: number; func?: unknown } | undefined>;
  _parser?: {
    _parseLength: () => boolean;
    packet: { length: number };
    _list: { length: number; consume(n: number): void };
    emit(event: string, ...args: unknown[]): boolean;
    on(event: string, listener: (err: Error) => void): void;
  };
}

const internals = (client: unknown) => client as ClientInternals;

/** An aedes whose connect sequence behaves as MQTT 5 requires (completeConnects). */
export async function createAedes(options: AedesOptions): Promise<Aedes> {
  const aedes = await Aedes.createBroker(options);
  completeConnects(aedes);
  return aedes;
}

/**
 * Two corrections to what aedes does between a successful CONNACK and the end of its connect
 * sequence, whose last step sends a resumed session's queue while it already reads the client's
 * packets:
 * - aedes marks the client `connected` only once that queue is sent, and until then skips the
 *   DISCONNECT it means to send (Topic Alias invalid, packet too large, session taken over): the
 *   connection just closes, with no reason code. A client that publishes at once after its
 *   CONNACK met this by chance. The connection is established by the CONNACK (MQTT 5 §3.2), so
 *   the client is marked `connected` when its CONNACK is written.
 * - aedes drops the queue of a resumed session when the new connection's session ends with it
 *   (`clean`: MQTT 5 Session Expiry 0), as if the client had asked for a clean start. MQTT 5
 *   (§3.1.2.4, §3.1.2.11.2) resumes the session, queue included, whenever Clean Start is 0; the
 *   Session Expiry only says when it ends. So while the queue is sent such a client is not
 *   `clean`; afterwards `clean` is again what aedes derives from the Session Expiry, by which
 *   aedes also ends the session when the connection closes.
 */
function completeConnects(aedes: Aedes): void {
  const resuming = new WeakSet<object>();
  aedes.on('connackSent', (packet, client) => {
    const c = internals(client);
    if ((packet.reasonCode ?? packet.returnCode ?? 0) !== 0 || c.closed) return;
    c.connected = true;
    if (c.version === 5 && c.clean === true && c._cleanStart === false) {
      c.clean = false;
      resuming.add(client);
    }
  });
  const resumed = (client: Client) => {
    if (!resuming.delete(client)) return;
    const c = internals(client);
    c.clean = c.sessionExpiryInterval === 0;
  };
  aedes.on('clientReady', resumed);
  aedes.on('clientDisconnect', resumed);
}

/** aedes' persistence (its in-memory one): a public field, untyped in aedes' d.ts. */
export function persistenceOf(aedes: Aedes): BrokerPersistence {
  const p = (aedes as unknown as { persistence?: BrokerPersistence }).persistence;
  if (!p) throw new Error('aedes has no persistence (not started?)');
  return p;
}

/** The connected (not closed) client with this id, from aedes' table of clients by id. */
export function connectedClient(aedes: Aedes | undefined, id: string): AedesClient | undefined {
  const c = (aedes as unknown as { clients?: Record<string, AedesClient> } | undefined)?.clients?.[id];
  return c && !internals(c).closed ? c : undefined;
}

/** The will of a client still connecting (aedes moves it to `will` only after authentication). */
export function pendingWill(client: Client): { topic: string; payload?: Buffer | string } | null {
  return internals(client)._will ?? null;
}

/** True when the client's session outlives its connection (3.1.1 clean = 0; MQTT 5 expiry > 0). */
export function isPersistent(client: Client): boolean {
  return internals(client).clean === false;
}

export function isClosed(client: Client): boolean {
  return !!internals(client).closed;
}

/** 3, 4 or 5 once connected. */
export function protocolVersion(client: Client): number {
  return internals(client).version ?? 4;
}

/** The Maximum Packet Size an MQTT 5 client declared in its CONNECT (aedes records it, does not enforce it). */
export function maximumPacketSizeOf(client: Client): number | undefined {
  return internals(client).maximumPacketSize;
}

/** The client's subscriptions by filter (read only). */
export function subscriptionsOf(client: Client): Record<string, unknown> {
  return internals(client).subscriptions ?? {};
}

/** The client's subscription to exactly `filter`: its granted QoS and the function aedes delivers it through. */
export function subscriptionOf(client: Client, filter: string): { qos: number; deliver: DeliverFn } | undefined {
  const s = internals(client).subscriptions?.[filter];
  return s && typeof s.func === 'function' ? { qos: s.qos ?? 0, deliver: s.func as DeliverFn } : undefined;
}

/** A packet on its way to subscribers (an aedes-packet: brokerId and brokerCounter name it). */
export interface DeliveredPacket {
  topic: string;
  qos: number;
  payload: Buffer | string;
  brokerId?: string;
  brokerCounter?: number;
  [key: string]: unknown;
}

/** How aedes hands a subscription its messages (a listener on its mqemitter); call `cb` when done. */
export type DeliverFn = (packet: DeliveredPacket, cb: () => void) => void;

/** Claims some subscription topics: aedes then registers their delivery functions here instead of on its emitter. */
export interface SubscriptionRouter {
  claims(topic: string): boolean;
  add(topic: string, deliver: DeliverFn, done: () => void): void;
  remove(topic: string, deliver: DeliverFn, done: () => void): void;
}

/**
 * aedes registers each granted subscription's delivery function with `aedes.subscribe(topic,
 * func, done)` (on SUBSCRIBE, and when it restores a persistent session) and removes it with
 * `aedes.unsubscribe(topic, func, done)` (on UNSUBSCRIBE and on disconnect); both are public
 * methods, which this overrides for the topics `router` claims. Returns aedes' own two, to listen
 * on its emitter directly (`listen(filter, fn, done)`: every message published on `filter`).
 */
export function routeSubscriptions(aedes: Aedes, router: SubscriptionRouter): { listen: EmitterOp; unlisten: EmitterOp } {
  const a = aedes as unknown as { subscribe: EmitterOp; unsubscribe: EmitterOp };
  const listen = a.subscribe.bind(aedes);
  const unlisten = a.unsubscribe.bind(aedes);
  a.subscribe = (topic, fn, done) => (router.claims(topic) ? router.add(topic, fn, done ?? noop) : listen(topic, fn, done));
  a.unsubscribe = (topic, fn, done) => (router.claims(topic) ? router.remove(topic, fn, done ?? noop) : unlisten(topic, fn, done));
  return { listen, unlisten };
}

type EmitterOp = (topic: string, fn: DeliverFn, done?: () => void) => void;
const noop = () => {};

/**
 * Lets `see` look at (and amend) each packet the client sends, after it is parsed and before aedes
 * handles it (a listener ahead of aedes' own on the client's parser). False when there is no parser.
 */
export function beforeHandling(client: Client, see: (packet: mqttPacket.Packet) => void): boolean {
  const parser = internals(client)._parser as unknown as { prependListener?(event: string, fn: (p: mqttPacket.Packet) => void): void } | undefined;
  if (typeof parser?.prependListener !== 'function') return false;
  parser.prependListener('packet', see);
  return true;
}

/** Lets `see` amend each packet aedes writes to this client, just before it is encoded (see writeHooks). */
export function beforeWriting(client: Client, see: (packet: mqttPacket.Packet) => void): void {
  writeHooks.set(client.conn as object, see);
}

/**
 * A read control for the read gate: aedes reads a client's socket only through `conn.read(null)`
 * in its read loop (`_nextBatch`), called when a batch of packets is handled. `held()` makes that
 * read return nothing; `wake()` runs the loop again once no longer held. Undefined when this
 * aedes has no such loop (the client is then never held).
 */
export function readControl(client: Client, conn: Readable, held: () => boolean): { wake(): void } | undefined {
  const c = internals(client);
  if (typeof c._nextBatch !== 'function') return undefined;
  const read = conn.read;
  conn.read = (size?: number): unknown => (held() ? null : read.call(conn, size));
  return {
    wake: () => {
      if (!c.closed) c._nextBatch?.();
    },
  };
}

/**
 * Replaces how a client waits for its socket to drain after a write aedes could not finish (aedes
 * completes a delivery, and so the publisher's PUBACK, only once this calls back).
 * False when this aedes has no such method.
 */
export function replaceDrainWait(client: Client, wait: (callback: (err: Error | null, client: unknown) => void) => void): boolean {
  const c = internals(client);
  if (typeof c.waitForDrain !== 'function') return false;
  c.waitForDrain = wait;
  return true;
}

/** Wraps the function through which aedes delivers QoS > 0 packets (retained ones on subscribe too). */
export function wrapDelivery(
  client: Client,
  wrap: (
    deliver: (packet: { retain?: boolean }, cb: (err?: Error | null) => void) => void,
  ) => (packet: { retain?: boolean }, cb: (err?: Error | null) => void) => void,
): void {
  const c = internals(client);
  if (typeof c.deliverQoS !== 'function') return;
  c.deliverQoS = wrap(c.deliverQoS);
}

/**
 * Refuses a packet whose declared remaining length exceeds `limit` as soon as its header is
 * parsed (mqtt-packet's `_parseLength`), before its body is buffered: an MQTT 5 client is sent
 * DISCONNECT 0x95 (packet too large, aedes' own path for its `maximumPacketSize`), any other is
 * disconnected. `onTooLarge` is called once per refused packet, `onError` for every other parser
 * error. False when the parser has no such step (the limit then applies only after parsing).
 */
export function limitPacketLength(client: Client, limit: number, onTooLarge: (bytes: number) => void, onError: (err: Error) => void): boolean {
  const c = internals(client);
  const parser = c._parser;
  const original = parser?._parseLength;
  if (!parser || typeof original !== 'function') return false;
  parser._parseLength = function guardedParseLength(this: typeof parser) {
    const ok = original.call(this);
    if (ok && this.packet.length > limit) {
      const bytes = this.packet.length;
      this._list.consume(this._list.length);
      onTooLarge(bytes);
      if (c.version === 5 && c.connected && typeof c.rejectPacketTooLarge === 'function') c.rejectPacketTooLarge(bytes);
      else this.emit('error', new Error(`packet of ${bytes} bytes is larger than allowed`));
      return false;
    }
    return ok;
  };
  parser.on('error', (err: Error) => {
    if (!/larger than allowed/.test(err.message)) onError(err);
  });
  return true;
}

/** MQTT 5 reason codes the broker sends on a PUBACK/PUBREC. */
export const ReasonCode = {
  unspecified: 0x80,
  notAuthorized: 0x87,
  topicNameInvalid: 0x90,
  quotaExceeded: 0x97,
  payloadFormatInvalid: 0x99,
  receiveMaximumExceeded: 0x93,
} as const;

/**
 * Answers an MQTT 5 publish with a PUBACK (QoS 1) or PUBREC (QoS 2) carrying `reasonCode`, and marks the packet as aedes marks one it refused itself (`_notAuthorized`), so
 * aedes neither acknowledges nor delivers it. The client stays connected; a QoS 0 publish is just
 * dropped. Calls `done` (aedes' callback, without an error) once written.
 */
export function refusePublishV5(
  client: Client,
  packet: { qos: number; messageId?: number },
  reasonCode: number,
  done: () => void,
): void {
  (packet as { _notAuthorized?: boolean })._notAuthorized = true;
  if (packet.qos > 0 && !isClosed(client)) {
    // No reason string: the code says it, the gateway's log says the rest, and some clients
    // (Paho's test client among them) refuse an acknowledgement that carries properties.
    const ack = { cmd: packet.qos === 1 ? 'puback' : 'pubrec', messageId: packet.messageId, reasonCode };
    mqttPacket.writeToStream(ack as mqttPacket.Packet, client.conn as unknown as Writable, { protocolVersion: 5 });
  }
  setImmediate(done);
}

/**
 * Closes an MQTT 5 client's connection without acknowledging this publish (a store that failed:
 * the client resends on its next connection, as a 3.1.1 client does when its connection closes).
 */
export function dropUnacknowledged(client: Client, packet: object, done: () => void): void {
  (packet as { _notAuthorized?: boolean })._notAuthorized = true;
  (client.conn as unknown as { destroy(): void }).destroy();
  setImmediate(done);
}

/**
 * Closes a client's connection over this publish, neither acknowledged nor delivered: an MQTT 5
 * client is sent DISCONNECT with `reasonCode` first; every publish it sends after is dropped the
 * same way (`closingOver` is true). Calls `done` (aedes' callback, without an error).
 *
 * Not aedes' own `disconnect`: it destroys the socket, and a socket closed with the client's later
 * packets unread makes the kernel answer with RST, which can discard the DISCONNECT before the
 * client reads it. Here aedes stops reading, what the client still sends is read and discarded,
 * and the connection closes once the client closes it (or after two seconds).
 */
export function disconnectOverPublish(client: Client, packet: object, reasonCode: number, done: () => void): void {
  (packet as { _notAuthorized?: boolean })._notAuthorized = true;
  const c = internals(client) as ClientInternals & { sluiceClosingOver?: boolean; close(cb?: () => void): void };
  const conn = client.conn as unknown as Duplex;
  if (!c.sluiceClosingOver && !isClosed(client)) {
    c.sluiceClosingOver = true;
    if (c.version === 5) mqttPacket.writeToStream({ cmd: 'disconnect', reasonCode } as mqttPacket.Packet, conn, { protocolVersion: 5 });
    if (c._nextBatch) conn.removeListener('readable', c._nextBatch);
    conn.on('data', () => undefined);
    const close = () => c.close();
    const force = setTimeout(close, 2000);
    conn.once('close', () => clearTimeout(force));
    conn.once('end', close);
  }
  setImmediate(done);
}

/** True once `disconnectOverPublish` began closing this client's connection. */
export function closingOver(client: Client): boolean {
  return (client as unknown as { sluiceClosingOver?: boolean }).sluiceClosingOver === true;
}

/** A PUBLISH aedes writes to a client (the fields flow control reads; the rest is passed on as is). */
export interface OutboundPublish {
  qos?: number;
  messageId?: number;
  topic?: string;
  payload?: Buffer | string;
  /** Absolute expiry (ms), aedes' own field for an MQTT 5 Message Expiry Interval. */
  messageExpiry?: number;
  properties?: { messageExpiryInterval?: number } & Record<string, unknown>;
}

/** A packet aedes parsed from a client (acknowledgements: puback, pubrec, pubcomp). */
export interface InboundPacket {
  cmd: string;
  messageId?: number;
  reasonCode?: number;
}

/**
 * Outbound flow control (flow-control.ts): each PUBLISH aedes writes to `conn` (through the
 * wrapped `writeToStream` above) once it sent an MQTT 5 CONNECT goes to `send` with a `write` to
 * call now or later; `send` returns what the write would (false: the socket is full).
 * `received` sees each packet parsed from the client, beside aedes' own handler.
 * `receiveMaximum()` is the Receive Maximum of the client's MQTT 5 CONNECT (aedes' default 65535
 * when absent), undefined before CONNECT and for MQTT 3.1.1. False when the client has no parser.
 */
export function interceptPublishes(
  client: Client,
  conn: object,
  hooks: {
    send(packet: OutboundPublish, write: (packet: OutboundPublish) => boolean): boolean;
    received(packet: InboundPacket): void;
  },
): { receiveMaximum(): number | undefined } | false {
  const c = internals(client) as ClientInternals & { receiveMaximum?: number };
  if (!c._parser) return false;
  (c._parser as unknown as { on(event: 'packet', f: (p: InboundPacket & { protocolVersion?: number }) => void): void }).on('packet', (p) => {
    // Only MQTT 5 has a Receive Maximum: other clients' writes are not routed at all.
    if (p.cmd === 'connect' && p.protocolVersion === 5) publishHooks.set(conn, hooks.send);
    hooks.received(p);
  });
  return { receiveMaximum: () => (c.version === 5 ? c.receiveMaximum : undefined) };
}
