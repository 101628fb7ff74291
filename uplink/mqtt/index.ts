/**
 * The MQTT sink: each batch is the contract document, published at QoS 1 to
 * `<topicPrefix>/<gateway id>/events`. A batch counts as delivered only when its PUBACK arrives; no
 * PUBACK within `ackTimeout` retries it and drops the connection (a peer that accepts and never
 * answers is treated as gone). Reconnects wait a jittered, growing delay between `reconnect.minDelay`
 * and `reconnect.maxDelay` so a fleet coming back from an outage does not stampede the broker.
 * The connection is exposed (`client`) for the fleet component, which shares it.
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { jitterBetween } from '../backoff.js';
import { encodeBatch } from '../encode.js';
import { describeNetworkError } from '../errors.js';
import { allAccepted, type Batch, type SendResult, type Sink, type SinkHealth } from '../sink.js';
import { sendInHalves } from '../split.js';
import { loadTls } from '../tls.js';
import type { MqttUplinkConfig } from './schema.js';

export interface SinkContext {
  gatewayId: string;
  logger: Logger;
}

export class MqttSink implements Sink {
  private mqtt?: MqttClient;
  private connected = false;
  private lastError?: string;
  private reconnectTimer?: NodeJS.Timeout;
  private reconnectAttempt = 0;
  private stopped = false;
  private waiters = new Set<() => void>();
  private serverMaxPacket?: number;
  readonly topic: string;

  constructor(
    private readonly config: MqttUplinkConfig,
    private readonly ctx: SinkContext,
  ) {
    this.topic = `${config.topicPrefix}/${ctx.gatewayId}/events`;
  }

  /** The live connection (fleet commands share it); undefined before start. */
  get client(): MqttClient | undefined {
    return this.mqtt;
  }

  async start(): Promise<void> {
    if (this.mqtt) return;
    this.stopped = false;
    const c = this.config;
    const tls = loadTls(c.tls, c.name);
    const options: IClientOptions = {
      clientId: c.clientId ?? `sluice-${this.ctx.gatewayId}-${c.name}`,
      username: c.username,
      password: c.password,
      protocolVersion: c.protocolVersion,
      keepalive: Math.max(1, Math.round(c.keepalive / 1000)),
      connectTimeout: c.connectTimeout,
      // mqtt.js reconnects at a fixed period; we reconnect ourselves, with jitter.
      reconnectPeriod: 0,
      clean: true,
      ...(tls ?? {}),
    };
    const client = mqtt.connect(c.url, options);
    this.mqtt = client;
    client.on('connect', (connack) => {
      this.serverMaxPacket = connack.properties?.maximumPacketSize;
      this.connected = true;
      this.reconnectAttempt = 0;
      this.lastError = undefined;
      this.ctx.logger.info({ url: c.url, topic: this.topic }, 'mqtt uplink connected');
      for (const w of this.waiters) w();
    });
    client.on('error', (err) => {
      this.lastError = `${c.url}: ${describeNetworkError(err)}`;
    });
    client.on('close', () => {
      if (this.connected) {
        this.lastError ??= `${c.url}: connection lost`;
        this.ctx.logger.warn({ url: c.url, error: this.lastError }, 'mqtt uplink disconnected');
      }
      this.connected = false;
      this.scheduleReconnect();
    });
    client.on('offline', () => {
      this.connected = false;
    });
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.reconnectTimer) return;
    const { minDelay, maxDelay } = this.config.reconnect;
    // Grows with each failed attempt up to maxDelay, always at least minDelay, uniformly jittered.
    const ceiling = Math.min(maxDelay, minDelay * 2 ** Math.min(this.reconnectAttempt, 20));
    const delay = jitterBetween(minDelay, Math.max(minDelay, ceiling));
    this.reconnectAttempt++;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (!this.stopped && this.mqtt && !this.mqtt.connected) this.mqtt.reconnect();
    }, delay);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const client = this.mqtt;
    this.mqtt = undefined;
    this.connected = false;
    for (const w of this.waiters) w();
    if (client) await client.endAsync(true).catch(() => {});
  }

  health(): SinkHealth {
    return { connected: this.connected, lastError: this.lastError };
  }

  async send(batch: Batch): Promise<SendResult> {
    const c = this.config;
    await this.waitConnected(c.ackTimeout);
    const client = this.mqtt;
    if (!client || !this.connected) {
      throw new Error(`not connected to ${c.url}${this.lastError ? ` (${this.lastError})` : ''}`);
    }
    const payload = await encodeBatch(batch, c.gzip);
    // The broker's limit (MQTT 5 CONNACK Maximum Packet Size) or the configured one: a larger batch
    // would get the connection dropped on every attempt, so it is split instead.
    const limit = Math.min(c.maxMessageBytes ?? Number.POSITIVE_INFINITY, this.serverMaxPacket ?? Number.POSITIVE_INFINITY);
    if (payload.length + this.topic.length + 64 > limit) {
      return sendInHalves(
        batch,
        (half) => this.send(half),
        () => ({ accepted: [], rejected: [0], retry: [], error: `the event is larger than the broker's message limit (${limit} bytes)` }),
      );
    }
    const properties =
      c.protocolVersion === 5 ? { contentType: c.gzip ? 'application/gzip' : 'application/json' } : undefined;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        // A peer that took the PUBLISH and never acknowledged it: drop the connection; the message is
        // resent on the next one (a possible duplicate, never a loss).
        this.lastError = `${c.url}: no PUBACK within ${c.ackTimeout} ms`;
        client.stream?.destroy();
        reject(new Error(`no PUBACK from ${c.url} within ${c.ackTimeout} ms for batch ${batch.batchId}`));
      }, c.ackTimeout);
    });
    try {
      await Promise.race([client.publishAsync(this.topic, payload, { qos: 1, properties }), timeout]);
    } finally {
      clearTimeout(timer);
    }
    return { ...allAccepted(batch), bytes: payload.length };
  }

  private waitConnected(ms: number): Promise<void> {
    if (this.connected || this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }
}

export function createMqttSink(config: MqttUplinkConfig, ctx: SinkContext): MqttSink {
  return new MqttSink(config, ctx);
}
