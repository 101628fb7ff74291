/**
 * The local MQTT broker (aedes) that sensors publish to.
 *
 * Guarantees:
 * - A QoS 1/2 PUBLISH on an ingest topic is acknowledged only after its event is durable in the
 *   ring log: aedes sends PUBACK after `authorizePublish` calls back, so the hook calls back only
 *   when `ingest` resolved. If the append fails, the hook errors, aedes closes the connection
 *   without an ack and the device resends (ARCHITECTURE principle 1).
 * - `onFull: reject` back-pressure: a QoS 1 publish waits (unacknowledged) until the log has room;
 *   a QoS 0 publish, which cannot wait, is refused and counted.
 * - Refusals (oversize, ACL, bad login, too many connections) are counted by reason and logged
 *   once per client; the offending client is told as MQTT 3.1.1 allows (CONNACK code, or the
 *   connection closed without an ack), and every other client is unaffected.
 * - Packets larger than the payload limit are refused while their header is parsed, before the
 *   body is buffered, so a huge remaining-length claim costs no memory.
 * - Every socket counts against `maxConnections` from the moment it is accepted (before a TLS
 *   handshake or a WebSocket upgrade), and one that has not become an MQTT client within the
 *   connect timeout is closed.
 * - Per-client state is bounded: client id length, subscriptions, QoS 2 packets awaiting PUBREL,
 *   queued messages of offline sessions, persistent sessions, retained messages (config keys in
 *   schema.ts, stated in deploy/SECURITY.md).
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import mqttPacket from 'mqtt-packet';
import type { Logger } from 'pino';
import { createWebSocketStream, WebSocketServer } from 'ws';
import { BufferFullError } from '../../buffer/types.js';
import { type EventInput, payloadFromBody } from '../core/event.js';
import { aclCovers } from '../auth/acl.js';
import { Logins } from '../auth/logins.js';
import { isForeignWebOrigin, isLoopback } from '../auth/origin.js';
import { loginRefusal, willAllowed } from './connect-checks.js';
import { type IncomingPersistence, type Qos2Client, Qos2Dedupe } from './qos2-dedupe.js';
import type { BrokerConfig, BrokerUser } from './schema.js';
import { type GatedClient, ReadGate } from './read-gate.js';
import { limitRetained, paceRetained, type RetainedDeliveringClient, type RetainedPersistence } from './retained.js';
import { SessionOwners, SessionsFullError } from './session-owners.js';
import { limitSessionQueues, type OutgoingPersistence } from './session-limit.js';
import { admitSubscription, type SubscribingClient } from './subscription-limit.js';
import { filterSet } from '../core/topics.js';

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

interface CompiledUser {
  user: BrokerUser;
  canPublish: (topic: string) => boolean;
  canSubscribe: (topic: string) => boolean;
}

/** Topic room for a packet besides the payload: the topic (≤ 64 KiB) and headers/properties. */
const PACKET_OVERHEAD = 65_536 + 1024;
const RETRY_FULL_MS = 250;
/** Publishes appended together at most (more wait for the next append in the same turn). */
const FLUSH_EVERY = 500;
/**
 * QoS 0 flow control, in bytes of publishes passed on before their append resolved (once appended
 * they are bytes in the ring log's commit buffer, no JS objects). Past the first bound a client that
 * sends QoS 0 is not read until the log catches up (read-gate.ts), so TCP slows it; past the second
 * (clients that cannot be held, or many at once) its publishes wait for the disk too. Both are well
 * below the log's own write-behind limit, so QoS 0 is slowed, not refused.
 */
const HOLD_QOS0_READS_BYTES = 4 * 1024 * 1024;
const MAX_UNSTORED_QOS0_BYTES = 6 * 1024 * 1024;
/** Offline persistent sessions: messages queued per client, and bytes over all (src/broker/session-limit.ts). */
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

// mqtt-packet otherwise pre-builds 65,536 two-byte Buffers for packet ids on first use: 6 MB of
// heap objects that every major garbage collection marks again, to save one tiny allocation per
// PUBACK. Measured (issue 3): the gateway's heap after a full GC drops from ~28 to ~22 MB.
mqttPacket.writeToStream.cacheNumbers = false;

export class LocalBroker {
  private aedes?: Aedes;
  private servers: Server[] = [];
  private users = new Map<string, CompiledUser>();
  private certUsers = new Map<string, CompiledUser>();
  private readonly isIngest: (topic: string) => boolean;
  private readonly allowAnonymous: boolean;
  private readonly logins: Logins;
  private readonly ownLogins: boolean;
  private readonly sessions: SessionOwners;
  private qos2?: Qos2Dedupe;
  private persistence?: BrokerPersistence;
  private connections = 0;
  /** Sessions whose full queue was logged already (once per client, bounded). */
  private readonly queueFullLogged = new Set<string>();
  private closing = false;
  private pending: IngestPublish[] = [];
  private unstoredQos0Bytes = 0;
  private readonly reads = new ReadGate();
  private releaseQueued = false;

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
    for (const user of config.users) {
      const compiled = { user, canPublish: filterSet(user.publish), canSubscribe: aclCovers(user.subscribe) };
      this.users.set(user.username, compiled);
      if (user.certCN) this.certUsers.set(user.certCN, compiled);
    }
  }

  get clientCount(): number {
    return this.connections;
  }

  get listening(): boolean {
    return this.servers.length > 0 && this.servers.every((s) => s.listening);
  }

  /** The addresses actually bound (port 0 in a config becomes the port the OS chose). */
  get addresses(): { host: string; port: number }[] {
    return this.servers.map((s) => {
      const a = s.address() as { address: string; port: number };
      return { host: a.address, port: a.port };
    });
  }

  async start(): Promise<void> {
    await this.sessions.load();
    const aedes = await Aedes.createBroker({
      concurrency: 1000,
      drainTimeout: 10_000,
      connectTimeout: CONNECT_TIMEOUT_MS,
      heartbeatInterval: 60_000,
      maxClientsIdLength: this.config.maxClientIdLength,
    });
    this.aedes = aedes;
    const persistence = (aedes as unknown as { persistence: BrokerPersistence }).persistence;
    this.persistence = persistence;
    this.qos2 = new Qos2Dedupe(persistence);
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
    limitSessionQueues((aedes as unknown as { persistence: OutgoingPersistence }).persistence, {
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
    aedes.authenticate = (client, username, password, done) => void this.authenticate(client, username, password, done);
    aedes.authorizePublish = (client, packet, done) => this.authorizePublish(client, packet, done);
    aedes.authorizeSubscribe = (client, sub, done) => {
      const user = (client as ClientWithUser).sluiceUser;
      if (sub.topic.startsWith('$SYS') || (user ? !user.canSubscribe(sub.topic) : !this.allowAnonymous)) {
        this.ctx.countRejected('acl_subscribe');
        this.ctx.logger.warn({ client: client.id, topic: sub.topic }, 'subscription refused: outside the ACL');
        return done(null, null); // SUBACK 0x80 for this filter; the client stays connected
      }
      if (!admitSubscription(client as unknown as SubscribingClient, sub.topic, this.config.maxSubscriptionsPerClient)) {
        this.ctx.countRejected('max_subscriptions');
        this.ctx.logger.warn(
          { client: client.id, topic: sub.topic, max: this.config.maxSubscriptionsPerClient },
          'subscription refused: broker.maxSubscriptionsPerClient reached',
        );
        return done(null, null);
      }
      done(null, sub);
    };
    aedes.on('clientError', (client, err) =>
      this.ctx.logger.debug({ client: client?.id, err: err.message }, 'client error'),
    );
    aedes.on('connectionError', (client, err) =>
      this.ctx.logger.debug({ client: client?.id, err: err.message }, 'connection error'),
    );

    try {
      for (const listener of this.config.listeners) {
        const onConnection = (conn: Socket | TLSSocket, req?: IncomingMessage) => this.accept(conn, req);
        let server: Server;
        if (listener.ws) {
          const http = listener.tls
            ? (await import('node:https')).createServer(tlsOptions(listener.tls))
            : createHttpServer();
          // Until the upgrade: an idle or half-sent request is closed after the connect timeout
          // (the upgraded WebSocket is not subject to it).
          http.timeout = CONNECT_TIMEOUT_MS;
          http.headersTimeout = CONNECT_TIMEOUT_MS;
          http.requestTimeout = CONNECT_TIMEOUT_MS;
          const wss = new WebSocketServer({ server: http, maxPayload: this.config.maxPayloadBytes + PACKET_OVERHEAD });
          wss.on('connection', (ws, req) => this.accept(createWebSocketStream(ws) as unknown as Socket, req));
          server = http as unknown as Server;
        } else if (listener.tls) {
          server = createTlsServer({ ...tlsOptions(listener.tls), handshakeTimeout: CONNECT_TIMEOUT_MS }, onConnection);
        } else {
          server = createNetServer(onConnection);
        }
        // Counted from the TCP accept, before any TLS handshake or HTTP upgrade.
        server.prependListener('connection', (sock: Socket) => this.admitSocket(sock));
        await listen(server, listener.host, listener.port);
        this.servers.push(server);
        this.ctx.logger.info(
          { host: listener.host, port: listener.port, tls: !!listener.tls, ws: listener.ws },
          'broker listening',
        );
      }
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
    const servers = this.servers;
    this.servers = [];
    await Promise.all(
      servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            (s as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
          }),
      ),
    );
    const aedes = this.aedes;
    this.aedes = undefined;
    if (aedes) await new Promise<void>((resolve) => aedes.close(() => resolve()));
    if (this.ownLogins) await this.logins.close();
  }

  /** Every accepted TCP socket, whatever the listener speaks, counts against maxConnections. */
  private admitSocket(sock: Socket): void {
    if (this.closing || this.connections >= this.config.maxConnections) {
      if (!this.closing) {
        this.ctx.countRejected('max_connections');
        this.ctx.logger.warn({ max: this.config.maxConnections }, 'connection refused: broker.maxConnections reached');
      }
      sock.destroy();
      return;
    }
    this.connections++;
    sock.once('close', () => this.connections--);
  }

  private accept(conn: Socket, req?: IncomingMessage): void {
    if (this.closing || !this.aedes || conn.destroyed) return void conn.destroy();
    const client = this.aedes.handle(conn, req) as unknown as ClientInternals;
    this.guardPacketSize(client);
    this.guardSlowConsumer(client, conn);
    paceRetained(client, conn, RETAINED_LOW_WATER_BYTES);
    this.reads.attach(client, conn);
  }

  /**
   * A subscriber that stops reading must not hold up intake. aedes completes a delivery only once
   * the subscriber's socket drained (up to drainTimeout), and the publisher's PUBACK waits for its
   * deliveries, so one stuck subscriber would stall every sensor publishing to its topics. Here a
   * delivery completes at once, and the subscriber is disconnected as a slow consumer (as NATS
   * does) when its unsent backlog passes a bound (memory), or when its socket has not drained for
   * SLOW_CONSUMER_MS. A burst a reading client takes in, such as the queue of a persistent session
   * sent on reconnect (bounded below the backlog limit), does not trip it.
   */
  private guardSlowConsumer(client: ClientInternals, conn: Socket): void {
    if (typeof client.waitForDrain !== 'function') return;
    const limit = Math.max(SLOW_CONSUMER_BYTES, 4 * (this.config.maxPayloadBytes + PACKET_OVERHEAD));
    let timer: NodeJS.Timeout | undefined;
    const drained = () => {
      clearTimeout(timer);
      timer = undefined;
    };
    const drop = (why: string) => {
      drained();
      if (conn.destroyed) return;
      this.ctx.countRejected('slow_consumer');
      this.ctx.logger.warn(
        { client: client.id, backlog: conn.writableLength, why },
        'subscriber dropped: it does not read what it subscribed to (slow consumer)',
      );
      conn.destroy();
    };
    conn.once('close', drained);
    client.waitForDrain = (callback) => {
      if (conn.writableLength > limit) {
        drop(`more than ${limit} bytes waiting`);
        setImmediate(callback, new Error('slow consumer'), client);
        return;
      }
      if (!timer) {
        timer = setTimeout(() => drop(`not drained for ${SLOW_CONSUMER_MS} ms`), SLOW_CONSUMER_MS);
        conn.once('drain', drained);
      }
      setImmediate(callback, null, client);
    };
  }

  /**
   * Refuses a packet whose declared length exceeds the limit as soon as the length is parsed. aedes
   * has no such option and would otherwise buffer the whole claimed length first.
   */
  private guardPacketSize(client: ClientInternals): void {
    const parser = client._parser;
    const original = parser?._parseLength;
    if (!parser || typeof original !== 'function') return;
    const limit = this.config.maxPayloadBytes + PACKET_OVERHEAD;
    parser._parseLength = function guardedParseLength(this: typeof parser) {
      const ok = original.call(this);
      if (ok && this.packet.length > limit) {
        this._list.consume(this._list.length);
        this.emit('error', new Error(`packet of ${this.packet.length} bytes exceeds broker.maxPayloadBytes`));
        return false;
      }
      return ok;
    };
    parser.on('error', (err: Error) => {
      if (err.message.includes('exceeds broker.maxPayloadBytes')) {
        this.ctx.countRejected('oversize');
        this.ctx.logger.warn(
          { client: client.id },
          'publish refused: larger than broker.maxPayloadBytes; connection closed',
        );
      } else {
        this.ctx.countRejected('malformed');
      }
    });
  }

  private async authenticate(
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
    done: (error: AuthenticateError | null, success: boolean | null) => void,
  ): Promise<void> {
    const address = clientAddress(client);
    const refuse = (code: 2 | 3 | 4 | 5, reason: string, msg: string) => {
      this.ctx.countRejected(reason);
      this.ctx.logger.warn({ client: client.id, address, username }, msg);
      const err = new Error(msg) as AuthenticateError;
      err.returnCode = code;
      done(err, false);
    };
    // aedes bounds client ids only for MQTT 3.1; 3.1.1 ids are as long as the packet allows.
    if (Buffer.byteLength(client.id) > this.config.maxClientIdLength) {
      return refuse(2, 'client_id_too_long', `login refused: the client id is longer than broker.maxClientIdLength (${this.config.maxClientIdLength} bytes)`);
    }
    let user: CompiledUser | undefined;
    // A TLS client certificate mapped to a user logs in as that user.
    const cn = (client.conn as TLSSocket).getPeerCertificate?.()?.subject?.CN;
    const certUser = cn && (client.conn as TLSSocket).authorized ? this.certUsers.get(String(cn)) : undefined;
    if (certUser) {
      user = certUser;
    } else if (username === undefined) {
      if (this.allowAnonymous && isForeignWebOrigin(client.req)) {
        // Any web page the operator opens could otherwise talk to a loopback WebSocket listener
        // (cross-site WebSocket hijacking): a browser sends its page's Origin, so a page from
        // elsewhere must log in with a username.
        return refuse(5, 'auth_anonymous', 'login refused: anonymous WebSocket clients from a web page on another site must log in with a username');
      }
      if (!this.allowAnonymous) {
        return refuse(5, 'auth_anonymous', 'login refused: anonymous clients are not allowed on this listener (broker.allowAnonymous)');
      }
    } else {
      const known = this.users.get(username);
      const result = await this.logins.check({
        address,
        username,
        secret: password?.toString('utf8') ?? '',
        hashes: known && password !== undefined ? [known.user.passwordHash] : [],
      });
      if (!result.ok) {
        const r = loginRefusal(result);
        return refuse(r.code, result.reason, r.message);
      }
      user = known;
    }
    const will = (client as ClientWithUser)._will;
    const mayPublish = user ? user.canPublish : () => this.allowAnonymous;
    if (will && !willAllowed(will, mayPublish, this.config.maxPayloadBytes)) {
      return refuse(5, 'acl_will', 'login refused: the will message is outside the client ACL or larger than broker.maxPayloadBytes');
    }
    if (this.isTakeoverByAnotherUser(client, user)) {
      return refuse(2, 'client_id_taken', 'login refused: the client id is in use by another user');
    }
    const principal = user?.user.username ?? '';
    const persistent = (client as ClientWithUser).clean === false;
    const verdict = this.sessions.check(client.id, principal, persistent);
    if (verdict === 'owned_by_another') {
      return refuse(5, 'session_owned', 'login refused: a persistent session with this client id belongs to another user');
    }
    if (verdict === 'full') {
      return refuse(3, 'max_persistent_sessions', 'login refused: broker.maxPersistentSessions reached; connect with a clean session');
    }
    try {
      await this.sessions.connected(client.id, principal, persistent);
    } catch (err) {
      if (err instanceof SessionsFullError) return refuse(3, 'max_persistent_sessions', 'login refused: broker.maxPersistentSessions reached; connect with a clean session');
      this.ctx.logger.error({ err: (err as Error).message }, 'persistent session owner not recorded');
      return refuse(3, 'store_failed', 'login refused: the session owner could not be recorded; try again');
    }
    (client as ClientWithUser).sluiceUser = user;
    done(null, true);
  }

  /**
   * A CONNECT with the id of a connected client takes its session over (MQTT), which would let any
   * user knock another user's sensor off by reusing its id. A takeover is allowed only by the same
   * user (a sensor reconnecting); another user gets CONNACK 2 (identifier rejected).
   */
  private isTakeoverByAnotherUser(client: Client, user: CompiledUser | undefined): boolean {
    // aedes keeps its connected clients by id (not in its typings).
    const clients = (this.aedes as unknown as { clients?: Record<string, ClientWithUser> } | undefined)?.clients;
    const existing = clients?.[client.id];
    return !!existing && !existing.closed && existing.sluiceUser?.user.username !== user?.user.username;
  }

  private authorizePublish(client: Client | null, packet: PublishPacketLike, done: (err?: Error | null) => void): void {
    const topic = packet.topic;
    // MQTT-1.5.3-1/2: a topic with ill-formed UTF-8 or U+0000 is malformed. The parser decodes
    // invalid bytes to U+FFFD, so that is what shows here; such a topic is refused, not stored.
    if (topic.includes('\u0000') || topic.includes('\ufffd')) {
      this.ctx.countRejected('malformed_topic');
      this.ctx.logger.warn(
        { client: client?.id },
        'publish refused: topic is not valid UTF-8 or contains U+0000; connection closed',
      );
      done(new Error('topic is not valid UTF-8'));
      return;
    }
    if (topic.startsWith('$')) {
      this.ctx.countRejected('acl_publish');
      done(new Error('topics starting with $ are reserved'));
      return;
    }
    const user = client ? (client as ClientWithUser).sluiceUser : undefined;
    if (client && (user ? !user.canPublish(topic) : !this.allowAnonymous)) {
      this.ctx.countRejected('acl_publish');
      this.ctx.logger.warn(
        { client: client.id, topic },
        'publish refused: topic outside the client ACL; connection closed',
      );
      done(new Error(`publish to "${topic}" is outside the ACL`));
      return;
    }
    const payload = packet.payload as Buffer;
    if (payload.length > this.config.maxPayloadBytes) {
      this.ctx.countRejected('oversize');
      this.ctx.logger.warn(
        { client: client?.id, topic, bytes: payload.length },
        'publish refused: larger than broker.maxPayloadBytes',
      );
      done(new Error(`payload of ${payload.length} bytes exceeds broker.maxPayloadBytes`));
      return;
    }
    if (this.ctx.intercept?.matches(topic)) {
      done(null);
      this.ctx.intercept.handle(topic, payload, user ? user.user.username : `client:${client?.id ?? 'internal'}`);
      return;
    }
    if (!this.isIngest(topic)) {
      done(null);
      return;
    }
    // Any bytes are a payload: the log stores them byte-exact (a body that is not UTF-8 goes on the wire as base64).
    if (packet.qos === 2 && client && this.qos2) {
      // A copy re-sent before PUBREL is answered again by aedes, not stored again.
      this.qos2.isDuplicate(client as unknown as Qos2Client, packet.messageId, (duplicate) => {
        if (duplicate) done(null);
        else this.enqueue(new IngestPublish(topic, payload, 2, client, done));
      });
      return;
    }
    if (packet.qos === 0 && this.unstoredQos0Bytes < MAX_UNSTORED_QOS0_BYTES) {
      // Nothing to acknowledge: pass the message on now and store it alongside, as long as few
      // QoS 0 messages wait for the disk; past that the client is not read for a while, and past
      // the hard bound its messages wait too (bounded memory).
      this.unstoredQos0Bytes += storedSize(topic, payload);
      if (client && this.unstoredQos0Bytes >= HOLD_QOS0_READS_BYTES) this.reads.hold(client);
      done(null);
      this.enqueue(new IngestPublish(topic, payload, 0, client, null));
      return;
    }
    this.enqueue(new IngestPublish(topic, payload, packet.qos, client, done));
  }

  /**
   * Publishes that arrive in one turn of the event loop are appended together: one append (one
   * promise, one group-commit entry) per turn instead of per message. Every publish, QoS 0 too,
   * calls back only after its append, so a client that sends faster than the disk commits is
   * slowed by TCP back-pressure instead of growing a queue in memory.
   */
  private enqueue(pending: IngestPublish): void {
    this.pending.push(pending);
    if (this.pending.length === 1) setImmediate(() => this.flush());
    // One turn can bring ten thousand publishes: appending every FLUSH_EVERY of them at once lets
    // them die young (the log copies them) instead of surviving garbage collections until the turn ends.
    else if (this.pending.length >= FLUSH_EVERY) this.flush();
  }

  private flush(): void {
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    // Only publishes that wait for their append stay referenced until it completes; a QoS 0
    // publish already passed on is just counted. (Thousands of them kept alive across garbage
    // collections would cost more than storing them.)
    let passed = 0;
    let passedBytes = 0;
    const waiting: IngestPublish[] = [];
    for (const p of batch) {
      if (p.done) waiting.push(p);
      else {
        passed++;
        passedBytes += storedSize(p.topic, p.body);
      }
    }
    this.ctx.ingest(batch).then(
      () => {
        this.qos0Stored(passedBytes);
        for (const p of waiting) p.done?.(null);
      },
      (err: Error) => {
        this.qos0Stored(passedBytes);
        // Nothing to acknowledge and nothing the client could resend: counted (they reached local subscribers).
        if (passed > 0) this.ctx.countRejected(err instanceof BufferFullError ? err.reason : 'store_failed', passed);
        for (const p of waiting) this.notStored(p, err);
      },
    );
  }

  private qos0Stored(bytes: number): void {
    this.unstoredQos0Bytes -= bytes;
    // Released on the next turn: the log starts its next commit first, so the disk writes while
    // the released clients are read.
    if (this.reads.holding && this.unstoredQos0Bytes < HOLD_QOS0_READS_BYTES && !this.releaseQueued) {
      this.releaseQueued = true;
      setImmediate(() => {
        this.releaseQueued = false;
        this.reads.release();
      });
    }
  }

  private notStored(p: IngestPublish, err: Error): void {
    const full = err instanceof BufferFullError;
    if (full && p.qos > 0 && p.client && !p.client.closed && !this.closing) {
      // Full (onFull: reject) or behind on writing: hold the acknowledgement until there is room.
      setTimeout(() => this.enqueue(p), RETRY_FULL_MS);
      return;
    }
    this.ctx.countRejected(full ? err.reason : 'store_failed');
    if (p.qos === 0) {
      // Nothing to acknowledge and nothing the client could resend: counted, and passed on to local subscribers.
      p.done?.(null);
      return;
    }
    this.ctx.logger.error({ err: err.message, topic: p.topic }, 'publish not stored; not acknowledged (the client will resend)');
    p.done?.(err);
  }
}

/**
 * A publish on an ingest topic, waiting for its append; it is the event itself. The log stores the
 * body as received; the payload is parsed only if something here looks at it (analytics, the
 * dashboard), so intake parses nothing.
 */
class IngestPublish implements EventInput {
  readonly source = 'mqtt';
  private parsed: { payload: unknown } | undefined;

  constructor(
    readonly topic: string,
    readonly body: Buffer,
    readonly qos: 0 | 1 | 2,
    readonly client: ClientWithUser | null,
    /** Lets aedes go on (PUBACK, delivery) once stored; null for a QoS 0 publish passed on already. */
    readonly done: ((err?: Error | null) => void) | null,
  ) {}

  get payload(): unknown {
    this.parsed ??= payloadFromBody(this.body);
    return this.parsed.payload;
  }
}

type BrokerPersistence = RetainedPersistence & IncomingPersistence & { cleanSubscriptions(client: { id: string }): Promise<void> };

interface PublishPacketLike {
  topic: string;
  payload: Buffer | string;
  qos: 0 | 1 | 2;
  messageId?: number;
}

type ClientWithUser = Client & {
  sluiceUser?: CompiledUser;
  closed?: boolean;
  clean?: boolean;
  /** aedes: the will of a client still connecting. */
  _will?: { topic: string; payload?: Buffer | string } | null;
};

interface ClientInternals extends GatedClient, RetainedDeliveringClient {
  id: string;
  waitForDrain?: (callback: (err: Error | null, client: unknown) => void) => void;
  _parser?: {
    _parseLength: () => boolean;
    packet: { length: number };
    _list: { length: number; consume(n: number): void };
    emit(event: string, ...args: unknown[]): boolean;
    on(event: string, listener: (err: Error) => void): void;
  };
}

/** Roughly what a publish takes in the ring log's commit buffer. */
function storedSize(topic: string, body: Buffer): number {
  return topic.length + body.length + 64;
}

/** The login limits a broker config sets (shared by every login check of the gateway). */
export function loginLimits(config: BrokerConfig) {
  return { perAddress: config.maxAuthFailuresPerMinute, perUser: config.maxAuthFailuresPerUserPerMinute };
}

function clientAddress(client: Client): string {
  const conn = client.conn as Socket;
  return conn.remoteAddress ?? client.req?.socket?.remoteAddress ?? 'unknown';
}

function tlsOptions(tls: { cert: string; key: string; ca?: string; requestCert: boolean }) {
  return {
    cert: readFileSync(tls.cert),
    key: readFileSync(tls.key),
    ca: tls.ca ? readFileSync(tls.ca) : undefined,
    requestCert: tls.requestCert,
    rejectUnauthorized: false, // a client without a certificate may still log in with a password
  };
}

/** Listens, turning EADDRINUSE into one sentence that names the port and the key that moves it. */
function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') {
        reject(
          new PortInUseError(
            `port ${port} on ${host} is already in use (another MQTT broker such as Mosquitto?); move the gateway's broker with broker.listeners[].port in the config`,
          ),
        );
      } else if (err.code === 'EACCES') {
        reject(new PortInUseError(`not allowed to listen on ${host}:${port}; choose another broker.listeners[].port`));
      } else reject(err);
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

export class PortInUseError extends Error {
  readonly code = 'PORT_IN_USE';
}
