/**
 * The Event Hubs uplink: AMQP 1.0 (rhea) to an Azure Event Hub, or any AMQP 1.0 peer.
 *
 * Guarantees: a message counts as delivered only once the peer settled it `accepted`. `rejected`
 * messages are rejected (dead-lettered) unless the condition is a transient one (server busy,
 * throttled, timeout), which is retried with `released` and `modified`; anything unsettled when
 * the connection drops or after `ackTimeout` is retried on a fresh connection (a blackholed link
 * is torn down, not waited on forever). An event larger than `maxMessageBytes` is rejected up front.
 * Authentication is a SAS token put on the `$cbs` node (renewed before it expires) or SASL PLAIN.
 * The transport is AMQP over TLS (5671), or AMQP over WebSocket (443, websocket.ts) where a proxy
 * applies or it is asked for; everything above the socket is the same on both.
 * The connection is opened lazily by `send` and never reconnects on its own: the runner's backoff
 * with jitter paces reconnects, so a fleet does not stampede the hub after an outage.
 */
import rhea, {
  type Connection,
  type ConnectionOptions,
  type Container,
  type Delivery,
  type EventContext,
  type Message,
  type Sender,
} from 'rhea';
import { proxyUrlFor, redactProxy } from '../proxy.js';
import { type OutRecord, planRecords } from '../records.js';
import { loadTls } from '../tls.js';
import type { Batch, SendResult, Sink, SinkHealth, SinkContext } from '../sink.js';
import { CbsClient } from './cbs.js';
import { describeAmqpError, describeDisconnect, isTransient } from './errors.js';
import { buildSasToken, sasTokenExpiry } from './sas.js';
import { type EventHubsUplinkConfig, parseConnectionString } from './schema.js';
import { DEFAULT_PORT, resolveTransport, type Transport, WebSocketDialer, webSocketUrl } from './websocket.js';

type Outcome = { kind: 'accepted' } | { kind: 'rejected' | 'retry'; why: string };


/** One AMQP connection with its sender; `dead` once it failed, never reused after. */
interface Link {
  conn: Connection;
  /** Over WebSocket: the dialer that owns the socket and knows why it failed. */
  ws?: WebSocketDialer;
  sender?: Sender;
  cbs?: CbsClient;
  renew?: NodeJS.Timeout;
  /** Connected, authorized and attached: messages may be sent. */
  ready: boolean;
  dead: boolean;
  /** Called once, with the reason, when the link dies. */
  onDead: Set<(why: string) => void>;
  /** Settlement callbacks of messages sent and not yet settled. */
  pending: Map<Delivery, (o: Outcome) => void>;
}

export class EventHubsSink implements Sink {
  private readonly container: Container;
  private readonly host: string;
  private readonly port: number;
  private readonly transport: Transport;
  private readonly wsUrl: string;
  private readonly address: string;
  private readonly audience: string;
  private readonly keyName?: string;
  private readonly key?: string;
  private readonly sasToken?: string;
  private link?: Link;
  private opening?: Promise<Link>;
  private connected = false;
  private lastError?: string;
  private stopped = false;

  constructor(
    private readonly config: EventHubsUplinkConfig,
    private readonly ctx: SinkContext,
  ) {
    const cs = config.connectionString ? parseConnectionString(config.connectionString) : {};
    this.host = config.host ?? cs.host ?? '';
    this.transport = resolveTransport(config, this.host);
    this.port = config.port ?? DEFAULT_PORT[this.transport];
    this.wsUrl = webSocketUrl(this.host, this.port);
    const hub = config.eventHub ?? cs.eventHub ?? '';
    this.address =
      config.address ?? (config.partitionId !== undefined ? `${hub}/Partitions/${config.partitionId}` : hub);
    this.audience = `sb://${this.host}/${hub}`;
    this.keyName = config.keyName ?? cs.keyName;
    this.key = config.key ?? cs.key;
    this.sasToken = config.sasToken ?? cs.sasToken;
    this.container = rhea.create_container({ id: `sluice-${ctx.gatewayId}-${config.name}` });
    // rhea throws an 'error' nobody listens to; every failure is handled per link below.
    this.container.on('error', (ctx: EventContext) => this.ctx.logger.debug({ err: ctx.error }, 'AMQP 1.0 error'));
  }

  async start(): Promise<void> {
    this.stopped = false;
    if (this.transport === 'websocket') {
      const proxy = proxyUrlFor(this.wsUrl, this.config.proxy);
      this.ctx.logger.info({ uplink: this.config.name, url: this.wsUrl, proxy: proxy ? redactProxy(proxy) : 'none' }, 'Event Hubs over WebSocket');
    }
    // Connect in the background so status shows a bad host or key before the first batch.
    this.ensureLink().catch(() => undefined);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const link = this.link;
    this.link = undefined;
    if (link) this.kill(link, 'the uplink is stopping', true);
    this.connected = false;
  }

  health(): SinkHealth {
    return { connected: this.connected, lastError: this.lastError };
  }

  async send(batch: Batch): Promise<SendResult> {
    const c = this.config;
    const plan = await planRecords(batch, {
      aggregate: c.aggregate,
      maxRecordBytes: c.maxMessageBytes,
      key: c.partitionKey,
      gzip: c.gzip,
      maxKeyChars: 128,
    });
    const result: SendResult = { accepted: [], rejected: [...plan.tooLarge], retry: [] };
    const errors: string[] = [];
    if (plan.tooLarge.length > 0)
      errors.push(`${plan.tooLarge.length} event(s) exceed maxMessageBytes (${c.maxMessageBytes} bytes)`);
    if (plan.records.length > 0) {
      const link = await this.ensureLink();
      const outcomes = await this.transmit(link, plan.records);
      const reasons = new Map<string, number>();
      outcomes.forEach((o, i) => {
        const idx = plan.records[i].indices;
        if (o.kind === 'accepted') result.accepted.push(...idx);
        else {
          (o.kind === 'rejected' ? result.rejected : result.retry).push(...idx);
          reasons.set(o.why, (reasons.get(o.why) ?? 0) + 1);
        }
      });
      for (const [why, n] of reasons) errors.push(`${n} message(s): ${why}`);
      // Throttled: Event Hubs asks clients to back off for a few seconds, not a few milliseconds.
      if ([...reasons.keys()].some((why) => why.includes('com.microsoft:server-busy'))) result.retryAfterMs = 4000;
      // Nothing got through and nothing was refused for good: a plain failure of the whole batch.
      if (result.accepted.length === 0 && result.rejected.length === 0 && errors.length > 0) {
        this.lastError = `Event Hubs ${errors.join('; ')}`;
        throw new Error(this.lastError);
      }
    }
    if (errors.length > 0) {
      result.error = `Event Hubs ${errors.join('; ')}`;
      this.lastError = result.error;
    } else this.lastError = undefined;
    return result;
  }

  /** Sends the records as credit allows and resolves with one outcome per record, never rejects. */
  private transmit(link: Link, records: OutRecord[]): Promise<Outcome[]> {
    const sender = link.sender!;
    if (link.dead) return Promise.resolve(records.map(() => ({ kind: 'retry', why: 'the connection closed before sending' })));
    return new Promise((resolve) => {
      const outcomes: (Outcome | undefined)[] = new Array(records.length);
      let open = records.length;
      let next = 0;
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        sender.removeListener('sendable', pump);
        link.onDead.delete(abort);
        resolve(outcomes as Outcome[]);
      };
      const settle = (i: number, o: Outcome) => {
        if (outcomes[i]) return;
        outcomes[i] = o;
        if (--open === 0) finish();
      };
      const abort = (why: string) => {
        for (let i = 0; i < records.length; i++) if (!outcomes[i]) outcomes[i] = { kind: 'retry', why };
        finish();
      };
      const pump = () => {
        while (!done && next < records.length && sender.sendable()) {
          const i = next++;
          try {
            const d = sender.send(this.message(records[i]));
            link.pending.set(d, (o) => settle(i, o));
          } catch (err) {
            // rhea throws when the link closed under us: this and the rest are retried on a new link.
            this.kill(link, `could not send: ${(err as Error).message}`);
            return;
          }
        }
      };
      const timer = setTimeout(() => {
        const why = `no settlement from the peer within ackTimeout (${this.config.ackTimeout} ms)`;
        // A peer that stopped answering: the next batch gets a fresh connection.
        this.kill(link, why);
        abort(why);
      }, this.config.ackTimeout);
      link.onDead.add(abort);
      sender.on('sendable', pump);
      pump();
    });
  }

  private message(r: OutRecord): Message {
    const c = this.config;
    const m: Message = {
      message_id: r.id,
      content_type: 'application/json',
      body: rhea.message.data_section(r.data),
    };
    if (c.gzip) m.content_encoding = 'gzip';
    // With a fixed partition the hub refuses a partition key; otherwise it picks the partition by it.
    if (c.partitionId === undefined) m.message_annotations = { 'x-opt-partition-key': r.key };
    return m;
  }

  private async ensureLink(): Promise<Link> {
    if (this.stopped) throw new Error('the Event Hubs uplink is stopped');
    if (this.link?.ready && !this.link.dead) return this.link;
    this.opening ??= this.open().finally(() => {
      this.opening = undefined;
    });
    return this.opening;
  }

  private async open(): Promise<Link> {
    const c = this.config;
    const o: Record<string, unknown> = {
      host: this.host,
      port: this.port,
      hostname: c.hostname ?? this.host,
      reconnect: false,
      idle_time_out: 60_000,
      container_id: `sluice-${this.ctx.gatewayId}-${c.name}`,
    };
    let ws: WebSocketDialer | undefined;
    if (this.transport === 'websocket') {
      ws = new WebSocketDialer(this.container, this.wsUrl, c.proxy, loadTls(c.tls, c.name), c.connectTimeout);
      o.connection_details = ws.details();
    } else if (this.transport === 'tls') {
      const tls = loadTls(c.tls, c.name);
      Object.assign(o, { transport: 'tls', servername: this.host, rejectUnauthorized: true });
      for (const [k, v] of Object.entries(tls ?? {})) if (v !== undefined) o[k] = v;
    }
    if (c.auth === 'plain') {
      o.username = this.keyName;
      o.password = this.key;
    } else o.username = this.keyName ?? 'sluice'; // SASL ANONYMOUS; the token authenticates
    const conn = this.container.connect(o as unknown as ConnectionOptions);
    const link: Link = { conn, ws, ready: false, dead: false, onDead: new Set(), pending: new Map() };
    this.link = link;
    const fail = (why: string) => this.kill(link, why);
    conn.on('disconnected', (ctx: EventContext) => fail(ws?.why() ?? describeDisconnect(ctx, this.host, this.port)));
    conn.on('connection_error', (ctx: EventContext) => {
      const e = (ctx.error ?? ctx.connection?.error) as { condition?: string } | undefined;
      fail(
        e?.condition === 'amqp:unauthorized-access'
          ? `the peer refused the credentials (${describeAmqpError(e)})`
          : `the peer closed the connection: ${describeAmqpError(e)}`,
      );
    });
    conn.on('connection_close', () => fail('the peer closed the connection'));
    conn.on('session_error', (ctx: EventContext) =>
      fail(`the peer ended the session: ${describeAmqpError(ctx.session?.error)}`),
    );
    conn.on('protocol_error', (ctx: EventContext) => fail(`AMQP protocol error: ${describeAmqpError(ctx.error)}`));
    conn.on('error', (ctx: EventContext) =>
      fail(`AMQP error: ${describeAmqpError(ctx.error ?? ctx.connection?.error)}`),
    );
    try {
      const to = ws ? `${ws.url}${ws.proxy ? ` through ${redactProxy(ws.proxy)}` : ''}` : `${this.host}:${this.port}`;
      await this.step(link, 'connection_open', conn, `could not open an AMQP connection to ${to}`);
      if (c.auth === 'sas-token') {
        link.cbs = new CbsClient(conn);
        await this.authorize(link);
      }
      const sender = conn.open_sender({ target: { address: this.address }, snd_settle_mode: 0, rcv_settle_mode: 0 });
      link.sender = sender;
      sender.on('sender_error', (ctx: EventContext) =>
        fail(`the peer refused the link to "${this.address}": ${describeAmqpError(ctx.sender?.error)}`),
      );
      sender.on('sender_close', () => fail(`the peer closed the link to "${this.address}"`));
      sender.on('accepted', (ctx: EventContext) => this.settled(link, ctx, { kind: 'accepted' }));
      sender.on('rejected', (ctx: EventContext) => {
        const err = ctx.delivery?.remote_state?.error as { condition?: string } | undefined;
        const why = `rejected by the hub (${describeAmqpError(err ?? 'no reason given')})`;
        this.settled(link, ctx, { kind: err?.condition && isTransient(err.condition) ? 'retry' : 'rejected', why });
      });
      sender.on('released', (ctx: EventContext) =>
        this.settled(link, ctx, { kind: 'retry', why: 'released by the hub' }),
      );
      sender.on('modified', (ctx: EventContext) =>
        this.settled(link, ctx, { kind: 'retry', why: 'not delivered by the hub (modified)' }),
      );
      await this.step(link, 'sender_open', sender, `could not attach to "${this.address}"`);
    } catch (err) {
      this.kill(link, (err as Error).message);
      throw err;
    }
    link.ready = true;
    this.connected = true;
    this.lastError = undefined;
    return link;
  }

  /** Waits for `event` on `emitter`, failing when the link dies first or after connectTimeout. */
  private step(link: Link, event: string, emitter: NodeJS.EventEmitter, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      if (link.dead) return reject(new Error(what));
      const timer = setTimeout(() => {
        const why = `${what}: no answer within ${this.config.connectTimeout} ms`;
        this.kill(link, why);
      }, this.config.connectTimeout);
      const onDead = (why: string) => {
        clearTimeout(timer);
        reject(new Error(why.startsWith(what) ? why : `${what}: ${why}`));
      };
      link.onDead.add(onDead);
      emitter.once(event, () => {
        clearTimeout(timer);
        link.onDead.delete(onDead);
        resolve();
      });
    });
  }

  /** Puts a SAS token on `$cbs` and schedules its renewal at 80 % of its lifetime. */
  private async authorize(link: Link): Promise<void> {
    let token = this.sasToken;
    let ttlMs = this.config.tokenTtl;
    if (this.keyName && this.key) {
      const expiry = Math.floor((Date.now() + ttlMs) / 1000);
      token = buildSasToken(this.audience, this.keyName, this.key, expiry);
    } else {
      const se = token ? sasTokenExpiry(token) : undefined;
      ttlMs = se ? se * 1000 - Date.now() : ttlMs;
      if (ttlMs <= 0) throw new Error('the configured sasToken has expired');
    }
    try {
      await link.cbs!.putToken(this.audience, token!, this.config.connectTimeout);
    } catch (err) {
      throw new Error(`Event Hubs refused the SAS token for ${this.audience}: ${(err as Error).message}`);
    }
    // A fixed token cannot be renewed: the link dies with it and the next send reports why.
    if (!(this.keyName && this.key)) return;
    link.renew = setTimeout(() => {
      this.authorize(link).catch((err) => this.kill(link, (err as Error).message));
    }, ttlMs * 0.8);
    link.renew.unref();
  }

  private settled(link: Link, ctx: EventContext, o: Outcome): void {
    const d = ctx.delivery;
    if (!d) return;
    const cb = link.pending.get(d);
    link.pending.delete(d);
    cb?.(o);
  }

  /** Marks a link dead (once): unsettled messages and waiters are told why, the connection is closed. */
  private kill(link: Link, why: string, quiet = false): void {
    if (link.dead) return;
    link.dead = true;
    if (link.renew) clearTimeout(link.renew);
    link.cbs?.close();
    if (this.link === link) {
      this.connected = false;
      if (!quiet) {
        this.lastError = `Event Hubs: ${why}`;
        this.ctx.logger.warn({ uplink: this.config.name }, this.lastError);
      }
    }
    for (const cb of link.pending.values()) cb({ kind: 'retry', why });
    link.pending.clear();
    for (const cb of [...link.onDead]) cb(why);
    link.onDead.clear();
    try {
      link.conn.close();
    } catch {
      // already gone
    }
    // Do not wait for a close handshake from a peer that may never answer.
    setTimeout(() => {
      try {
        if (link.ws) link.ws.destroy();
        else (link.conn as unknown as { socket?: { destroy(): void } }).socket?.destroy();
      } catch {
        // already gone
      }
    }, 1000).unref();
  }
}
