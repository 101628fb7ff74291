/**
 * The local MQTT broker (aedes) that sensors publish to: wires listeners, login, ACLs, the
 * per-client guards and intake together. Each part has its own file:
 * - listeners.ts: TCP/TLS/WebSocket sockets and the connection bound;
 * - authenticate.ts: who may connect (logins, takeover, session owners);
 * - authorize.ts: what a client may publish and subscribe to;
 * - intake.ts: publishes on ingest topics into the ring log (PUBACK after the durable append);
 * - shared-subscriptions.ts: `$share/<group>/<filter>` (MQTT 5 §4.8.2);
 * - client-guards.ts, read-gate.ts, retained.ts, session-limit.ts, subscription-limit.ts,
 *   qos2-dedupe.ts: the bounds (deploy/SECURITY.md);
 * - flow-control.ts: an MQTT 5 client's Receive Maximum on what the broker sends;
 * - aedes-adapter.ts: every use of aedes internals.
 *
 * Refusals (oversize, ACL, bad login, too many connections) are counted by reason and logged
 * once per client; the offending client is told as MQTT allows (CONNACK code, or the connection
 * closed without an ack), and every other client is unaffected.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Aedes, Client } from 'aedes';
import type { Logger } from 'pino';
import type { EventInput } from '../core/event.js';
import { Logins } from '../auth/logins.js';
import { isLoopback } from '../auth/origin.js';
import { filterSet } from '../core/topics.js';
import {
  type BrokerPersistence,
  closingOver,
  createAedes,
  disconnectOverPublish,
  dropUnacknowledged,
  persistenceOf,
  protocolVersion,
  ReasonCode,
  refusePublishV5,
} from './aedes-adapter.js';
import { Authenticator, userOf } from './authenticate.js';
import { checkPublish, forwardHook, type PublishRefusal, storeGrantedOnly, subscribeHook } from './authorize.js';
import { guardPacketSize, guardSlowConsumer } from './client-guards.js';
import { enforceReceiveMaximum } from './flow-control.js';
import { InboundWindow } from './inbound-window.js';
import { Intake, type Mqtt5Fields } from './intake.js';
import { Listeners } from './listeners.js';
import { limitRetained, paceRetained } from './retained.js';
import type { BrokerConfig } from './schema.js';
import { SessionOwners } from './session-owners.js';
import { SharedSubscriptions } from './shared-subscriptions.js';
import { limitSessionQueues } from './session-limit.js';

export { PortInUseError } from './listeners.js';

export interface BrokerContext {
  logger: Logger;
  /** Appends events durably; resolves when they are on disk. */
  ingest(events: EventInput[]): Promise<unknown>;
  /** Counts something the broker refused, by reason. */
  countRejected(reason: string, n?: number): void;
  /** Topics handled by the gateway instead of ingested (write requests), after the ACL check. */
  intercept?: { matches(topic: string): boolean; handle(topic: string, payload: Buffer, requester: string): void };
  /** The gateway's one password checker (shared with HTTP); the broker makes its own without one. */
  logins?: Logins;
  /** Where the owners of persistent sessions are kept (in the data dir); in memory only without one. */
  sessionOwnersFile?: string;
}

/** Topic room for a packet besides the payload: the topic (≤ 64 KiB) and headers/properties. */
const PACKET_OVERHEAD = 65_536 + 1024;
/** Offline persistent sessions: messages queued per client, and bytes over all (session-limit.ts). */
const MAX_QUEUED_PER_SESSION = 1000;
const MAX_QUEUED_BYTES_PER_SESSION = 4 * 1024 * 1024;
const MAX_QUEUED_BYTES = 16 * 1024 * 1024;
/**
 * A subscriber is dropped when this many bytes wait for it (at least 4 maximal packets; above a
 * persistent session's queue, which is sent in one burst on reconnect), or when its socket has not
 * drained for SLOW_CONSUMER_MS.
 */
const SLOW_CONSUMER_BYTES = 8 * 1024 * 1024;
const SLOW_CONSUMER_MS = 10_000;
/** The next retained message for a new subscription is written once this little waits for the socket. */
const RETAINED_LOW_WATER_BYTES = 512 * 1024;
/** A socket must have sent its CONNECT (or its WebSocket upgrade) within this. */
const CONNECT_TIMEOUT_MS = 10_000;
/** MQTT 5: topic aliases a client may register (Mosquitto's default), each on one connection. */
const TOPIC_ALIAS_MAXIMUM = 10;
/** MQTT 5: QoS 1/2 publishes a client may have unacknowledged (advertised in CONNACK; enforced: inbound-window.ts). */
const RECEIVE_MAXIMUM = 1000;
/** MQTT 5: longest session expiry granted (the same month after which a session owner is forgotten). */
const SESSION_EXPIRY_LIMIT_S = 30 * 86_400;

export class LocalBroker {
  private aedes?: Aedes;
  private intake?: Intake;
  private inbound?: InboundWindow;
  private persistence?: BrokerPersistence;
  private shares?: SharedSubscriptions;
  private readonly listeners: Listeners;
  private readonly isIngest: (topic: string) => boolean;
  private readonly allowAnonymous: boolean;
  private readonly logins: Logins;
  private readonly ownLogins: boolean;
  private readonly sessions: SessionOwners;
  private readonly auth: Authenticator;
  /** Sessions whose full queue was logged already (once per client, bounded). */
  private readonly queueFullLogged = new Set<string>();
  private closing = false;

  constructor(
    private readonly config: BrokerConfig,
    private readonly ctx: BrokerContext,
  ) {
    this.isIngest = filterSet(config.ingest);
    this.allowAnonymous = config.allowAnonymous ?? config.listeners.every((l) => isLoopback(l.host));
    this.ownLogins = !ctx.logins;
    this.logins = ctx.logins ?? new Logins(loginLimits(config));
    this.sessions = new SessionOwners(
      ctx.sessionOwnersFile,
      config.maxPersistentSessions,
      (err) => ctx.logger.error({ err: err.message, file: ctx.sessionOwnersFile }, 'persistent session owners not readable; set aside, sessions start unowned'),
      // A session unused for a month makes room for a new one: its subscriptions go with it.
      (clientId) => void this.persistence?.cleanSubscriptions({ id: clientId }).catch(() => {}),
    );
    this.auth = new Authenticator(config, this.allowAnonymous, this.logins, this.sessions, () => this.aedes, ctx);
    this.listeners = new Listeners({
      maxConnections: config.maxConnections,
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
      maxPacketBytes: config.maxPayloadBytes + PACKET_OVERHEAD,
      onConnection: (conn, req) => this.accept(conn, req),
      onRefused: () => {
        ctx.countRejected('max_connections');
        ctx.logger.warn({ max: config.maxConnections }, 'connection refused: broker.maxConnections reached');
      },
      onListening: (l) => ctx.logger.info({ host: l.host, port: l.port, tls: !!l.tls, ws: l.ws }, 'broker listening'),
    });
  }

  get clientCount(): number {
    return this.listeners.count;
  }

  get listening(): boolean {
    return this.listeners.listening;
  }

  /** The addresses actually bound (port 0 in a config becomes the port the OS chose). */
  get addresses(): { host: string; port: number }[] {
    return this.listeners.addresses;
  }

  async start(): Promise<void> {
    await this.sessions.load();
    const aedes = await createAedes({
      concurrency: 1000,
      drainTimeout: 10_000,
      connectTimeout: CONNECT_TIMEOUT_MS,
      heartbeatInterval: 60_000,
      maxClientsIdLength: this.config.maxClientIdLength,
      topicAliasMaximum: TOPIC_ALIAS_MAXIMUM,
      // Advertised to MQTT 5 clients (a whole packet: the remaining length our guard bounds plus
      // at most 5 header bytes, so aedes' own check never fires first); enforced from the header
      // for every client (client-guards.ts).
      maximumPacketSize: this.config.maxPayloadBytes + PACKET_OVERHEAD + 5,
      receiveMaximum: RECEIVE_MAXIMUM,
      sessionExpiryIntervalLimit: SESSION_EXPIRY_LIMIT_S,
      // Sessions waiting to expire are bounded like persistent sessions (session-owners.ts).
      pendingSessionsLimit: this.config.maxPersistentSessions,
    });
    this.aedes = aedes;
    const persistence = persistenceOf(aedes);
    this.persistence = persistence;
    this.intake = new Intake(this.ctx, persistence);
    this.inbound = new InboundWindow(persistence, RECEIVE_MAXIMUM);
    this.boundPersistence(persistence);
    storeGrantedOnly(persistence);
    aedes.authenticate = this.auth.hook;
    aedes.authorizePublish = (client, packet, done) => this.authorizePublish(client, packet, done);
    const shares = new SharedSubscriptions(aedes);
    this.shares = shares;
    aedes.authorizeSubscribe = shares.authorizing(
      subscribeHook({ allowAnonymous: this.allowAnonymous, maxSubscriptionsPerClient: this.config.maxSubscriptionsPerClient }, this.ctx),
    );
    aedes.authorizeForward = forwardHook as typeof aedes.authorizeForward;
    aedes.on('clientError', (client, err) => this.ctx.logger.debug({ client: client?.id, err: err.message }, 'client error'));
    aedes.on('connectionError', (client, err) => this.ctx.logger.debug({ client: client?.id, err: err.message }, 'connection error'));
    try {
      await this.listeners.start(this.config.listeners);
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Publishes a message to local subscribers on behalf of the gateway (local actions). Not ingested. */
  publish(topic: string, payload: string | Buffer, qos: 0 | 1 = 0, retain = false): Promise<void> {
    const aedes = this.aedes;
    if (!aedes) return Promise.resolve();
    return new Promise((resolve, reject) =>
      aedes.publish({ cmd: 'publish', topic, payload: Buffer.from(payload), qos, retain, dup: false }, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
  }

  async stop(): Promise<void> {
    this.closing = true;
    this.intake?.stop();
    await this.listeners.stop();
    const aedes = this.aedes;
    this.aedes = undefined;
    if (aedes) await new Promise<void>((resolve) => aedes.close(() => resolve()));
    if (this.ownLogins) await this.logins.close();
  }

  /** Retained messages and offline session queues, bounded (retained.ts, session-limit.ts). */
  private boundPersistence(persistence: BrokerPersistence): void {
    const retainedLogged = new Set<string>();
    limitRetained(persistence, {
      maxMessages: this.config.maxRetainedMessages,
      maxBytes: this.config.maxRetainedBytes,
      onRefused: (topic, bound) => {
        this.ctx.countRejected('retained_full');
        if (retainedLogged.has(bound)) return; // once per bound per run: a flood must not flood the log
        retainedLogged.add(bound);
        this.ctx.logger.warn(
          { topic, bound, maxMessages: this.config.maxRetainedMessages, maxBytes: this.config.maxRetainedBytes },
          'retained message not kept (delivered, not retained): broker.maxRetainedMessages or broker.maxRetainedBytes reached',
        );
      },
    });
    limitSessionQueues(persistence, {
      maxPerClient: MAX_QUEUED_PER_SESSION,
      maxBytesPerClient: MAX_QUEUED_BYTES_PER_SESSION,
      maxBytesTotal: MAX_QUEUED_BYTES,
      onDrop: (clientId) => {
        this.ctx.countRejected('session_queue_full');
        if (!this.queueFullLogged.has(clientId) && this.queueFullLogged.size < 1000) {
          this.queueFullLogged.add(clientId);
          this.ctx.logger.warn({ client: clientId }, 'message not queued for an offline persistent session: its queue is full');
        }
      },
    });
  }

  private accept(conn: Socket, req?: IncomingMessage): void {
    if (this.closing || !this.aedes || !this.intake || conn.destroyed) return void conn.destroy();
    const client = this.aedes.handle(conn, req);
    this.shares?.attach(client);
    guardPacketSize(client, this.config.maxPayloadBytes + PACKET_OVERHEAD, this.ctx);
    const maxBacklogBytes = Math.max(SLOW_CONSUMER_BYTES, 4 * (this.config.maxPayloadBytes + PACKET_OVERHEAD));
    guardSlowConsumer(client, conn, { maxBacklogBytes, stallMs: SLOW_CONSUMER_MS }, this.ctx);
    // MQTT 5 Receive Maximum on what the broker sends; retained messages are paced on what it holds too.
    const window = enforceReceiveMaximum(client, conn, { maxBacklogBytes }, this.ctx);
    paceRetained(client, window ? window.pacedConn(conn) : conn, RETAINED_LOW_WATER_BYTES);
    this.intake.reads.attach(client, conn);
  }

  /**
   * aedes' `authorizePublish` hook: the checks of authorize.ts, then intake for ingest topics. A
   * refused publish closes an MQTT 3.1.1 connection (the only way 3.1.1 has to refuse one); an
   * MQTT 5 client is answered with a PUBACK/PUBREC reason code and stays connected.
   */
  private authorizePublish(client: Client | null, packet: PublishPacketLike, done: (err?: Error | null) => void): void {
    const topic = packet.topic;
    const payload = packet.payload as Buffer;
    const v5 = client !== null && protocolVersion(client) === 5;
    const refuse = (reason: string, message: string, code: number, log = true) => {
      this.ctx.countRejected(reason);
      if (log) this.ctx.logger.warn({ client: client?.id, topic, bytes: payload.length }, v5 ? message : `${message}; connection closed`);
      if (v5) refusePublishV5(client, packet, code, () => done(null));
      else done(new Error(message));
    };
    let resent = false;
    if (client) {
      if (closingOver(client)) return disconnectOverPublish(client, packet, ReasonCode.receiveMaximumExceeded, () => done(null));
      resent = packet.qos === 2 && this.inbound!.holds(client, packet.messageId);
      const admitted = this.inbound!.admit(client, v5, packet, done);
      if (!admitted) {
        this.ctx.countRejected('receive_maximum');
        this.ctx.logger.warn(
          { client: client.id, receiveMaximum: RECEIVE_MAXIMUM },
          'client has more publishes unacknowledged or unreleased (QoS 2 without PUBREL) than the Receive Maximum; connection closed',
        );
        return disconnectOverPublish(client, packet, ReasonCode.receiveMaximumExceeded, () => done(null));
      }
      done = admitted;
    }
    const refusal = checkPublish(
      client,
      topic,
      payload,
      { allowAnonymous: this.allowAnonymous, maxPayloadBytes: this.config.maxPayloadBytes },
      packet.properties?.payloadFormatIndicator === true,
    );
    if (refusal) return refuse(refusal.reason, refusal.message, V5_CODE[refusal.reason], refusal.log);
    // A QoS 2 copy re-sent before PUBREL is answered again by aedes (PUBREC), not stored or acted on again.
    if (resent) return this.inbound!.answerCopy(client!, packet.messageId!, done);
    const user = userOf(client);
    if (this.ctx.intercept?.matches(topic)) {
      done(null);
      this.ctx.intercept.handle(topic, payload, user ? user.user.username : `client:${client?.id ?? 'internal'}`);
      return;
    }
    if (!this.isIngest(topic)) return done(null);
    // Any bytes are a payload: the log stores them byte-exact (a body that is not UTF-8 goes on the wire as base64).
    const stored = v5 ? (err?: Error | null) => (err ? dropUnacknowledged(client, packet, () => done(null)) : done(null)) : done;
    this.intake!.accept(client, topic, payload, packet.qos, packet.messageId, stored, mqtt5Fields(packet.properties));
  }
}

/** The MQTT 5 PUBACK reason code for each publish refusal. */
const V5_CODE: Record<PublishRefusal['reason'], number> = {
  malformed_topic: ReasonCode.topicNameInvalid,
  payload_format: ReasonCode.payloadFormatInvalid,
  acl_publish: ReasonCode.notAuthorized,
  oversize: ReasonCode.quotaExceeded,
};

interface PublishPacketLike {
  topic: string;
  payload: Buffer | string;
  qos: 0 | 1 | 2;
  messageId?: number;
  properties?: { userProperties?: Record<string, string | string[]>; contentType?: string; payloadFormatIndicator?: boolean };
}

/** What of an MQTT 5 publish's properties the event keeps (none for 3.1.1). */
function mqtt5Fields(p: PublishPacketLike['properties']): Mqtt5Fields | undefined {
  if (!p || (p.userProperties === undefined && p.contentType === undefined)) return undefined;
  return { userProperties: p.userProperties, contentType: p.contentType };
}

/** The login limits a broker config sets (shared by every login check of the gateway). */
export function loginLimits(config: BrokerConfig) {
  return { perAddress: config.maxAuthFailuresPerMinute, perUser: config.maxAuthFailuresPerUserPerMinute };
}
