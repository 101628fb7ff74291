/**
 * The AMQP 0-9-1 sink (RabbitMQ): each batch is the contract document, published on a confirm
 * channel to `exchange` with `routingKey`, `messageId = batchId`. It counts as delivered only on the
 * broker's ack; a nack, a return (mandatory: no queue bound to the key) or no confirm within
 * `ackTimeout` retries it (a timeout also re-makes the connection). The connection is re-made after
 * a jittered, growing delay (`reconnect.minDelay..maxDelay`) whenever it closes.
 */
import amqp, { type ChannelModel, type ConfirmChannel } from 'amqplib';
import { jitterBetween } from '../backoff.js';
import { encodeBatch } from '../encode.js';
import { describeNetworkError } from '../errors.js';
import { allAccepted, type Batch, type SendResult, type Sink, type SinkHealth, type SinkContext } from '../sink.js';
import { loadTls } from '../tls.js';
import type { AmqpUplinkConfig } from './schema.js';

export class AmqpSink implements Sink {
  private conn?: ChannelModel;
  private channel?: ConfirmChannel;
  private connected = false;
  private lastError?: string;
  private stopped = true;
  private reconnectTimer?: NodeJS.Timeout;
  private reconnectAttempt = 0;
  private connecting?: Promise<void>;
  private readonly returned = new Set<string>();
  private readonly routingKey: string;
  private readonly safeUrl: string;

  constructor(
    private readonly config: AmqpUplinkConfig,
    private readonly ctx: SinkContext,
  ) {
    this.routingKey = config.routingKey.replaceAll('{gateway}', ctx.gatewayId);
    // Never show the password in status or logs.
    this.safeUrl = config.url.replace(/\/\/([^:/@]+):[^@/]*@/, '//$1:***@');
  }

  async start(): Promise<void> {
    this.stopped = false;
    // Files are read now, so a missing CA fails start() with its path (the runner retries it).
    loadTls(this.config.tls, this.config.name);
    this.connecting = this.connect();
  }

  private async connect(): Promise<void> {
    const c = this.config;
    const tls = loadTls(c.tls, c.name);
    try {
      const conn = await amqp.connect(withHeartbeat(c.url, c.heartbeat), {
        ...(tls ?? {}),
        timeout: c.ackTimeout,
        clientProperties: { connection_name: `sluice-${this.ctx.gatewayId}-${c.name}` },
      });
      if (this.stopped) {
        await conn.close().catch(() => {});
        return;
      }
      conn.on('error', (err: Error) => {
        this.lastError = `${this.safeUrl}: ${describeNetworkError(err)}`;
      });
      conn.on('close', () => {
        // A late close of a connection already dropped must not clobber its successor.
        if (this.conn === conn || this.conn === undefined) this.lost('connection closed');
      });
      const channel = await conn.createConfirmChannel();
      channel.on('error', (err: Error) => {
        this.lastError = `${this.safeUrl}: ${err.message}`;
      });
      channel.on('close', () => {
        // A channel error (e.g. publishing to a missing exchange) closes the channel, not the connection:
        // close the connection too, so one path re-makes both.
        if (this.conn === conn) this.drop(conn, 'channel closed');
      });
      channel.on('return', (msg) => {
        if (msg.properties.messageId) this.returned.add(String(msg.properties.messageId));
      });
      if (c.declareExchange && c.exchange !== '') {
        await channel.assertExchange(c.exchange, c.declareExchange.type, { durable: c.declareExchange.durable });
      }
      this.conn = conn;
      this.channel = channel;
      this.connected = true;
      this.reconnectAttempt = 0;
      this.lastError = undefined;
      this.ctx.logger.info(
        { url: this.safeUrl, exchange: c.exchange, routingKey: this.routingKey },
        'amqp uplink connected',
      );
    } catch (err) {
      this.lastError = `${this.safeUrl}: ${describeNetworkError(err)}`;
      this.scheduleReconnect();
    }
  }

  /**
   * Gives up on a connection at once: a polite close waits for the broker's CloseOk, which a peer
   * that stopped answering never sends, so the socket is destroyed and a new connection scheduled.
   */
  private drop(conn: ChannelModel, why: string): void {
    if (this.conn !== conn) return;
    const stream = (conn as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream;
    stream?.destroy();
    void conn.close().catch(() => {});
    this.lost(why);
  }

  private lost(why: string): void {
    if (this.connected)
      this.ctx.logger.warn({ url: this.safeUrl, error: this.lastError ?? why }, 'amqp uplink disconnected');
    this.lastError ??= `${this.safeUrl}: ${why}`;
    this.connected = false;
    this.conn = undefined;
    this.channel = undefined;
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.reconnectTimer) return;
    const { minDelay, maxDelay } = this.config.reconnect;
    const ceiling = Math.min(maxDelay, minDelay * 2 ** Math.min(this.reconnectAttempt++, 20));
    this.reconnectTimer = setTimeout(
      () => {
        this.reconnectTimer = undefined;
        if (!this.stopped && !this.conn) this.connecting = this.connect();
      },
      jitterBetween(minDelay, Math.max(minDelay, ceiling)),
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const conn = this.conn;
    this.conn = undefined;
    this.channel = undefined;
    this.connected = false;
    if (conn) await conn.close().catch(() => {});
  }

  health(): SinkHealth {
    return { connected: this.connected, lastError: this.lastError };
  }

  async send(batch: Batch): Promise<SendResult> {
    const c = this.config;
    if (!this.channel && this.connecting) {
      await Promise.race([this.connecting, new Promise((r) => setTimeout(r, c.ackTimeout).unref())]);
    }
    const channel = this.channel;
    const conn = this.conn;
    if (!channel || !conn)
      throw new Error(`not connected to ${this.safeUrl}${this.lastError ? ` (${this.lastError})` : ''}`);
    const payload = await encodeBatch(batch, c.gzip);
    const id = batch.batchId;
    this.returned.delete(id);
    let timer: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        timer = setTimeout(() => {
          this.lastError = `${this.safeUrl}: no publisher confirm within ${c.ackTimeout} ms`;
          this.drop(conn, 'no publisher confirm');
          reject(new Error(`no publisher confirm from ${this.safeUrl} within ${c.ackTimeout} ms for batch ${id}`));
        }, c.ackTimeout);
        try {
          channel.publish(
            c.exchange,
            this.routingKey,
            payload,
            {
              messageId: id,
              contentType: 'application/json',
              contentEncoding: c.gzip ? 'gzip' : undefined,
              persistent: c.persistent,
              mandatory: c.mandatory,
              appId: 'sluice',
              headers: { 'x-sluice-gateway': batch.gateway },
            },
            (err) => (err ? reject(new Error(`the broker refused batch ${id} (nack)`)) : resolve()),
          );
        } catch (err) {
          reject(err);
        }
      });
    } finally {
      clearTimeout(timer);
    }
    if (this.returned.delete(id)) {
      const error = `no queue is bound to exchange "${c.exchange}" with routing key "${this.routingKey}" (batch returned)`;
      this.lastError = error;
      return { accepted: [], rejected: [], retry: batch.events.map((_, i) => i), error, bytes: payload.length };
    }
    return { ...allAccepted(batch), bytes: payload.length };
  }
}

/** amqplib takes the heartbeat from the URL's query; an explicit one in the URL wins. */
function withHeartbeat(url: string, ms: number): string {
  if (/[?&]heartbeat=/.test(url)) return url;
  return `${url}${url.includes('?') ? '&' : '?'}heartbeat=${Math.max(1, Math.round(ms / 1000))}`;
}
