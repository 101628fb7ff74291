/**
 * The MQTT sink: each batch is the contract document, published at QoS 1 to
 * `<topicPrefix>/<gateway id>/events`. A batch counts as delivered only when its PUBACK arrives; no
 * PUBACK within `ackTimeout` retries it and drops the connection (a peer that accepts and never
 * answers is treated as gone). Reconnects wait a jittered, growing delay between `reconnect.minDelay`
 * and `reconnect.maxDelay` so a fleet coming back from an outage does not stampede the broker.
 * The fleet agent opens its own connection to the same broker (connection.ts holds the shared
 * settings); the live connection is exposed (`client`) for the Sparkplug sink built on this one. A `session` lets a
 * protocol on top of MQTT (Sparkplug B) set the last will of each connection and publish its own
 * messages on connect before any batch goes out.
 */
import mqtt, { type IClientOptions, type IClientPublishOptions, type MqttClient } from 'mqtt';
import { jitterBetween } from '../backoff.js';
import { encodeBatch } from '../encode.js';
import { describeNetworkError } from '../errors.js';
import { proxyAgentFor } from '../proxy.js';
import { allAccepted, type Batch, type SendResult, type Sink, type SinkHealth, type SinkContext } from '../sink.js';
import { sendInHalves } from '../split.js';
import { loadTls } from '../tls.js';
import { mqttConnectOptions } from './connection.js';
import type { MqttUplinkConfig } from './schema.js';

/** How long a stop waits for the broker to take a clean DISCONNECT before closing the socket. */
const CLEAN_DISCONNECT_MS = 1000;

export type Publish = (topic: string, payload: Uint8Array, opts: IClientPublishOptions, what: string) => Promise<void>;

/** What a protocol on top of MQTT adds to each connection. */
export interface MqttSession {
  /** The last will of the next connection (read before each connect). */
  will?(): IClientOptions['will'];
  /**
   * Runs on each CONNACK before the sink counts as connected (so before any batch); `publish` waits
   * for the broker's acknowledgement like a batch does. A throw drops the connection.
   */
  onConnect?(client: MqttClient, publish: Publish): Promise<void>;
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
    private readonly session: MqttSession = {},
  ) {
    this.topic = `${config.topicPrefix}/${ctx.gatewayId}/events`;
  }

  /** The live connection (the Sparkplug sink publishes its births on it); undefined before start. */
  get client(): MqttClient | undefined {
    return this.mqtt;
  }

  async start(): Promise<void> {
    if (this.mqtt) return;
    this.stopped = false;
    const c = this.config;
    const tls = loadTls(c.tls, c.name);
    const options: IClientOptions = {
      ...mqttConnectOptions(c, tls),
      clientId: c.clientId ?? `sluice-${this.ctx.gatewayId}-${c.name}`,
      // mqtt.js reconnects at a fixed period; we reconnect ourselves, with jitter.
      reconnectPeriod: 0,
      clean: true,
      will: this.session.will?.(),
    };
    // Over WebSocket an outbound proxy applies (uplink/proxy.ts); plain MQTT over TCP takes none.
    if (/^wss?:/i.test(c.url)) {
      const agent = proxyAgentFor(c.url, c.proxy, tls);
      if (agent) options.wsOptions = { agent };
    }
    const client = mqtt.connect(c.url, options);
    this.mqtt = client;
    client.on('connect', async (connack) => {
      this.serverMaxPacket = connack.properties?.maximumPacketSize;
      if (this.session.onConnect) {
        try {
          await this.session.onConnect(client, (t, p, o, w) => this.publishOn(client, t, p, o, w));
        } catch (err) {
          this.lastError = `${c.url}: ${(err as Error).message}`;
          client.stream?.destroy();
          return;
        }
      }
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
      if (this.stopped || !this.mqtt || this.mqtt.connected) return;
      if (this.session.will) this.mqtt.options.will = this.session.will();
      this.mqtt.reconnect();
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
    if (!client) return;
    // A stop is not a lost connection: a clean DISCONNECT makes the broker discard the last will (a
    // forced close would fire it, e.g. a second Sparkplug NDEATH). A peer that does not take it in
    // time gets the socket closed.
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('late')), CLEAN_DISCONNECT_MS)));
    await Promise.race([client.connected ? client.endAsync(false) : Promise.reject(new Error('not connected')), late])
      .catch(() => client.endAsync(true).catch(() => {}))
      .finally(() => clearTimeout(timer));
  }

  health(): SinkHealth {
    return { connected: this.connected, lastError: this.lastError };
  }

  async send(batch: Batch): Promise<SendResult> {
    const c = this.config;
    await this.waitConnected(c.ackTimeout);
    if (!this.mqtt || !this.connected) throw this.notConnected();
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
    await this.publishAcked(this.topic, payload, { qos: 1, properties }, `batch ${batch.batchId}`);
    return { ...allAccepted(batch), bytes: payload.length };
  }

  /**
   * Publishes and waits for the broker's PUBACK (QoS 1) or the write (QoS 0). A peer that took the
   * PUBLISH and never acknowledged it within `ackTimeout` gets its connection dropped; the message
   * is resent on the next one (a possible duplicate, never a loss).
   */
  publishAcked(topic: string, payload: Uint8Array, opts: IClientPublishOptions, what: string): Promise<void> {
    const client = this.mqtt;
    if (!client || !this.connected) return Promise.reject(this.notConnected());
    return this.publishOn(client, topic, payload, opts, what);
  }

  private async publishOn(client: MqttClient, topic: string, payload: Uint8Array, opts: IClientPublishOptions, what: string): Promise<void> {
    const c = this.config;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.lastError = `${c.url}: no PUBACK within ${c.ackTimeout} ms`;
        client.stream?.destroy();
        reject(new Error(`no PUBACK from ${c.url} within ${c.ackTimeout} ms for ${what}`));
      }, c.ackTimeout);
    });
    try {
      await Promise.race([client.publishAsync(topic, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength), opts), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private notConnected(): Error {
    return new Error(`not connected to ${this.config.url}${this.lastError ? ` (${this.lastError})` : ''}`);
  }

  /** Waits up to `ms` for the connection; resolves either way. */
  waitConnected(ms: number): Promise<void> {
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
