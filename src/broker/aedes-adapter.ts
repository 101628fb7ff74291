/**
 * Every use of aedes beyond its documented API, in one place.
 *
 * The broker's guards need a few of aedes' internals: its persistence object (wrapped by the
 * retained, session-queue and QoS 2 guards), its table of connected clients (takeover check), a
 * connecting client's will and session flag, a client's packet parser (length limit), its read
 * loop (read gate), its drain wait (slow-consumer guard) and its delivery function (retained
 * pacing). aedes-adapter.test.ts asserts that each exists and behaves as used here, so an aedes
 * upgrade that changes one fails there, by name, instead of silently disabling a guard.
 */
import type { Readable } from 'node:stream';
import { Aedes, type AedesOptions, type Client } from 'aedes';
import mqttPacket from 'mqtt-packet';

// mqtt-packet otherwise pre-builds 65,536 two-byte Buffers for packet ids on first use: 6 MB of
// heap objects that every major garbage collection marks again, to save one tiny allocation per
// PUBACK (the gateway's heap after a full GC drops by about a fifth without them).
mqttPacket.writeToStream.cacheNumbers = false;

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
}

export interface QueuedPacket {
  payload?: Buffer | string;
  topic?: string;
}

/** What the broker keeps on an aedes client (its own fields are prefixed `sluice`). */
export type AedesClient = Client & { sluiceUser?: unknown; sluiceQos2?: Set<number>; sluiceGranted?: Map<string, number> };

interface ClientInternals {
  id: string;
  closed?: boolean;
  clean?: boolean;
  version?: number;
  _will?: { topic: string; payload?: Buffer | string } | null;
  _nextBatch?: () => void;
  waitForDrain?: (callback: (err: Error | null, client: unknown) => void) => void;
  deliverQoS?: (packet: { retain?: boolean }, cb: (err?: Error | null) => void) => void;
  subscriptions?: Record<string, unknown>;
  _parser?: {
    _parseLength: () => boolean;
    packet: { length: number };
    _list: { length: number; consume(n: number): void };
    emit(event: string, ...args: unknown[]): boolean;
    on(event: string, listener: (err: Error) => void): void;
  };
}

const internals = (client: unknown) => client as ClientInternals;

export async function createAedes(options: AedesOptions): Promise<Aedes> {
  return Aedes.createBroker(options);
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

/** The client's subscriptions by filter (read only). */
export function subscriptionsOf(client: Client): Record<string, unknown> {
  return internals(client).subscriptions ?? {};
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
 * parsed (mqtt-packet's `_parseLength`), before its body is buffered: the parser emits an error
 * naming `marker` and aedes closes the connection. Every parser error is reported to `onError`.
 * False when the parser has no such step (the limit then applies only after parsing).
 */
export function limitPacketLength(client: Client, limit: number, marker: string, onError: (err: Error) => void): boolean {
  const parser = internals(client)._parser;
  const original = parser?._parseLength;
  if (!parser || typeof original !== 'function') return false;
  parser._parseLength = function guardedParseLength(this: typeof parser) {
    const ok = original.call(this);
    if (ok && this.packet.length > limit) {
      this._list.consume(this._list.length);
      this.emit('error', new Error(`packet of ${this.packet.length} bytes ${marker}`));
      return false;
    }
    return ok;
  };
  parser.on('error', onError);
  return true;
}
