/**
 * The NATS sink: each batch is the contract document, published to JetStream with
 * `Nats-Msg-Id: <batchId>`, and counts as delivered only on the stream's PubAck (a duplicate
 * PubAck, for a batch the stream already holds within its dedupe window, counts as delivered too).
 * A batch over the server's `max_payload` is split in halves; one event still too large is rejected.
 * The connection reconnects forever, after a jittered, growing delay (`reconnect.minDelay..maxDelay`).
 */
import { readFileSync } from 'node:fs';
import {
  type ConnectionOptions,
  connect,
  credsAuthenticator,
  type JetStreamClient,
  type NatsConnection,
  RetentionPolicy,
  StorageType,
} from 'nats';
import { jitterBetween } from '../backoff.js';
import { encodeBatch } from '../encode.js';
import { describeNetworkError } from '../errors.js';
import { allAccepted, type Batch, type SendResult, type Sink, type SinkHealth, type SinkContext } from '../sink.js';
import { sendInHalves } from '../split.js';
import type { NatsUplinkConfig } from './schema.js';

export class NatsSink implements Sink {
  private nc?: NatsConnection;
  private js?: JetStreamClient;
  private connecting?: Promise<void>;
  private connected = false;
  private lastError?: string;
  private stopped = false;
  private reconnectAttempt = 0;
  private options?: ConnectionOptions;
  private settled = false;
  private retryTimer?: NodeJS.Timeout;

  constructor(
    private readonly config: NatsUplinkConfig,
    private readonly ctx: SinkContext,
  ) {}

  async start(): Promise<void> {
    this.stopped = false;
    const c = this.config;
    const options: ConnectionOptions = {
      servers: c.servers,
      name: `sluice-${this.ctx.gatewayId}-${c.name}`,
      user: c.user,
      pass: c.pass,
      token: c.token,
      timeout: c.ackTimeout,
      // A link that stops answering is noticed within about a minute, not nats.js's default four.
      pingInterval: 20_000,
      maxPingOut: 3,
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectDelayHandler: () => {
        const { minDelay, maxDelay } = c.reconnect;
        const ceiling = Math.min(maxDelay, minDelay * 2 ** Math.min(this.reconnectAttempt++, 20));
        return jitterBetween(minDelay, Math.max(minDelay, ceiling));
      },
    };
    if (c.credsFile) {
      try {
        options.authenticator = credsAuthenticator(readFileSync(c.credsFile));
      } catch (err) {
        throw new Error(
          `uplinks.${c.name}.credsFile: cannot read "${c.credsFile}" (${(err as NodeJS.ErrnoException).code})`,
        );
      }
    }
    if (c.tls) {
      options.tls = { caFile: c.tls.ca, certFile: c.tls.cert, keyFile: c.tls.key };
    }
    this.options = options;
    this.connecting = this.connect(options);
  }

  private async connect(options: ConnectionOptions): Promise<void> {
    this.settled = false;
    try {
      const nc = await connect(options);
      if (this.stopped) {
        await nc.close();
        return;
      }
      this.nc = nc;
      this.js = nc.jetstream({ timeout: this.config.ackTimeout });
      this.connected = true;
      this.reconnectAttempt = 0;
      this.lastError = undefined;
      this.ctx.logger.info({ server: nc.getServer(), subject: this.config.subject }, 'nats uplink connected');
      void this.watch(nc);
      if (this.config.stream?.create) await this.ensureStream(nc);
    } catch (err) {
      // Server down at start, refused credentials: reported, and tried again after a jittered delay
      // (a timer that stop() cancels: nats.js's own first-connect loop could not be).
      this.lastError = `${this.config.servers.join(',')}: ${describeNetworkError(err)}`;
      this.scheduleConnect();
    } finally {
      this.settled = true;
    }
  }

  private scheduleConnect(): void {
    if (this.stopped || this.retryTimer || !this.options) return;
    const { minDelay, maxDelay } = this.config.reconnect;
    const ceiling = Math.min(maxDelay, minDelay * 2 ** Math.min(this.reconnectAttempt++, 20));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.stopped && !this.nc && this.settled && this.options) this.connecting = this.connect(this.options);
    }, jitterBetween(minDelay, Math.max(minDelay, ceiling)));
  }

  private async watch(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') {
        this.connected = false;
        this.lastError = `${s.data}: disconnected`;
        this.ctx.logger.warn({ server: s.data }, 'nats uplink disconnected');
      } else if (s.type === 'reconnect') {
        this.connected = true;
        this.reconnectAttempt = 0;
        this.ctx.logger.info({ server: s.data }, 'nats uplink reconnected');
      } else if (s.type === 'error') {
        this.lastError = `${this.config.servers.join(',')}: ${String(s.data)}`;
      }
    }
    this.connected = false;
  }

  private async ensureStream(nc: NatsConnection): Promise<void> {
    const s = this.config.stream!;
    const jsm = await nc.jetstreamManager({ timeout: this.config.ackTimeout });
    try {
      await jsm.streams.info(s.name);
    } catch {
      await jsm.streams.add({
        name: s.name,
        subjects: [this.config.subject],
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        duplicate_window: s.duplicateWindow * 1_000_000, // nanoseconds
      });
      this.ctx.logger.info({ stream: s.name, subject: this.config.subject }, 'nats stream created');
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const nc = this.nc;
    this.nc = undefined;
    this.js = undefined;
    this.connected = false;
    if (nc) await nc.drain().catch(() => nc.close());
  }

  health(): SinkHealth {
    return { connected: this.connected, lastError: this.lastError };
  }

  async send(batch: Batch): Promise<SendResult> {
    const c = this.config;
    if (!this.js && this.settled && this.options && !this.stopped) this.connecting = this.connect(this.options);
    if (!this.js && this.connecting) {
      // Still connecting: wait up to ackTimeout for it.
      await Promise.race([this.connecting, new Promise((r) => setTimeout(r, c.ackTimeout).unref())]);
    }
    const js = this.js;
    const nc = this.nc;
    if (!js || !nc)
      throw new Error(`not connected to ${c.servers.join(',')}${this.lastError ? ` (${this.lastError})` : ''}`);
    const payload = await encodeBatch(batch, c.gzip);
    const max = nc.info?.max_payload ?? Number.POSITIVE_INFINITY;
    // Headers (Nats-Msg-Id) take a little room too.
    if (payload.length + 256 > max) return this.split(batch, max);
    try {
      await js.publish(c.subject, payload, { msgID: batch.batchId, timeout: c.ackTimeout });
    } catch (err) {
      const text = (err as Error).message;
      const hint = /no responders|503/i.test(text) ? ` (no JetStream stream captures subject "${c.subject}")` : '';
      this.lastError = `${c.servers.join(',')}: ${text}${hint}`;
      throw new Error(`JetStream publish of batch ${batch.batchId} failed: ${text}${hint}`);
    }
    return { ...allAccepted(batch), bytes: payload.length };
  }

  private split(batch: Batch, max: number): Promise<SendResult> {
    return sendInHalves(
      batch,
      (half) => this.send(half),
      () => ({ accepted: [], rejected: [0], retry: [], error: `the event is larger than the server's max_payload (${max} bytes)` }),
    );
  }
}
