/**
 * The Sparkplug B sink: the gateway is an edge node toward a Sparkplug host application. Per
 * Sparkplug 3.0:
 * - each MQTT connection carries a new `bdSeq` (persisted, so restarts never reuse one) in its last
 *   will, an NDEATH; the node subscribes to its NCMD and DCMD topics, then publishes NBIRTH (seq 0,
 *   `bdSeq`, `Node Control/Rebirth`) and a DBIRTH for every device it knows, before any data;
 * - a batch becomes one DDATA per device, in log order, metrics by alias; a device is born again
 *   (DBIRTH) before data that carries a metric its certificate lacks;
 * - data older than the current NBIRTH (backlog replayed from the ring log after an outage) is
 *   marked `is_historical`;
 * - NCMD `Node Control/Rebirth` = true republishes NBIRTH and every DBIRTH;
 * - a clean stop publishes NDEATH itself.
 * Delivery is the runner's at-least-once: a batch is accepted when every message of it was
 * acknowledged (QoS 1 by default). Publishing is serialised, so births never interleave with data.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import type { SluiceEvent } from '../../src/core/event.js';
import { MqttSink, type Publish } from '../mqtt/index.js';
import type { MqttUplinkConfig } from '../mqtt/schema.js';
import type { Batch, SendResult, Sink, SinkHealth, SinkContext } from '../sink.js';
import { deviceOf, EdgeModel, type EventMetric, metricsOf } from './model.js';
import { DataType, decodePayload, encodePayload, type Metric } from '../../src/core/sparkplug/payload.js';
import type { SparkplugUplinkConfig } from './schema.js';

const NAMESPACE = 'spBv1.0';
const REBIRTH = 'Node Control/Rebirth';

export class SparkplugSink implements Sink {
  private readonly mqtt: MqttSink;
  private readonly model: EdgeModel;
  private readonly edgeNode: string;
  private readonly bdSeqFile: string;
  private bdSeq = -1;
  private seq = 0;
  /** When the current NBIRTH went out: data older than this is historical. */
  private bornAt = Number.POSITIVE_INFINITY;
  /** Devices born since the current NBIRTH. */
  private readonly born = new Set<string>();
  /** Every publish goes through this chain, so births and data never interleave. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly config: SparkplugUplinkConfig,
    /** Needs the data directory: bdSeq is kept there across restarts. */
    private readonly ctx: SinkContext & { dataDir: string },
  ) {
    this.edgeNode = config.edgeNode ?? ctx.gatewayId;
    this.model = new EdgeModel(config.maxMetrics);
    this.bdSeqFile = join(ctx.dataDir, 'sparkplug', `${config.name}.bdseq`);
    const mqttConfig = { ...config, type: 'mqtt', topicPrefix: NAMESPACE, protocolVersion: 4 } as unknown as MqttUplinkConfig;
    this.mqtt = new MqttSink(mqttConfig, ctx, {
      will: () => this.nextWill(),
      onConnect: (client, publish) => this.onConnect(client, publish),
    });
  }

  private topic(type: string, device?: string): string {
    return `${NAMESPACE}/${this.config.groupId}/${type}/${this.edgeNode}${device ? `/${device}` : ''}`;
  }

  /** A new bdSeq for the next connection, persisted before it is used. */
  private nextWill() {
    if (this.bdSeq < 0) this.bdSeq = readBdSeq(this.bdSeqFile);
    this.bdSeq = (this.bdSeq + 1) & 255;
    mkdirSync(join(this.ctx.dataDir, 'sparkplug'), { recursive: true });
    writeFileSync(`${this.bdSeqFile}.tmp`, String(this.bdSeq));
    renameSync(`${this.bdSeqFile}.tmp`, this.bdSeqFile);
    return { topic: this.topic('NDEATH'), payload: Buffer.from(this.deathPayload()), qos: 1 as const, retain: false };
  }

  private deathPayload(): Uint8Array {
    return encodePayload({ timestamp: Date.now(), metrics: [{ name: 'bdSeq', datatype: DataType.Int64, value: this.bdSeq }] });
  }

  private async onConnect(client: MqttClient, publish: Publish): Promise<void> {
    client.removeAllListeners('message');
    client.on('message', (topic, payload) => this.onCommand(topic, payload));
    await client.subscribeAsync([this.topic('NCMD'), `${this.topic('DCMD')}/+`], { qos: 1 });
    await this.serialised(() => this.birth(publish));
  }

  /** NBIRTH and every DBIRTH: the start of a session, and the answer to a rebirth request. */
  private async birth(publish: Publish): Promise<void> {
    this.seq = 0;
    this.born.clear();
    const now = Date.now();
    const nodeMetrics: Metric[] = [
      { name: 'bdSeq', datatype: DataType.Int64, value: this.bdSeq, timestamp: now },
      { name: REBIRTH, datatype: DataType.Boolean, value: false, timestamp: now },
    ];
    await publish(this.topic('NBIRTH'), encodePayload({ timestamp: now, seq: 0, metrics: nodeMetrics }), this.qos(), 'NBIRTH');
    this.bornAt = now;
    for (const device of this.model.deviceNames()) await this.deviceBirth(device, publish);
  }

  private async deviceBirth(device: string, publish: Publish): Promise<void> {
    const payload = encodePayload({ timestamp: Date.now(), seq: this.nextSeq(), metrics: this.model.birthMetrics(device) });
    await publish(this.topic('DBIRTH', device), payload, this.qos(), `DBIRTH ${device}`);
    this.born.add(device);
  }

  private onCommand(topic: string, payload: Buffer): void {
    if (topic !== this.topic('NCMD')) {
      this.ctx.logger.warn({ topic }, 'sparkplug: device commands (DCMD) are not supported; ignored');
      return;
    }
    let rebirth: boolean;
    try {
      rebirth = decodePayload(payload).metrics.some((m) => m.name === REBIRTH && m.value === true);
    } catch (err) {
      this.ctx.logger.warn({ topic, error: (err as Error).message }, 'sparkplug: unreadable NCMD ignored');
      return;
    }
    if (!rebirth) return;
    this.ctx.logger.info({ edgeNode: this.edgeNode }, 'sparkplug: rebirth requested');
    const publish: Publish = (t, p, o, w) => this.mqtt.publishAcked(t, p, o, w);
    this.serialised(() => this.birth(publish)).catch((err: Error) =>
      this.ctx.logger.warn({ error: err.message }, 'sparkplug: rebirth failed; it is repeated on the next connection'),
    );
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) & 255;
    return this.seq;
  }

  private qos() {
    return { qos: this.config.qos };
  }

  private serialised<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => {});
    return run;
  }

  start(): Promise<void> {
    return this.mqtt.start();
  }

  async stop(): Promise<void> {
    // An intentional disconnect announces itself: the will only fires on a lost connection.
    // Births may still be in flight on a fresh connection: let them finish so the NDEATH follows them.
    if (this.mqtt.client?.connected) await this.mqtt.waitConnected(this.config.ackTimeout);
    if (this.mqtt.health().connected) {
      await this.mqtt.publishAcked(this.topic('NDEATH'), this.deathPayload(), { qos: 1 }, 'NDEATH').catch(() => {});
    }
    await this.mqtt.stop();
  }

  health(): SinkHealth {
    return this.mqtt.health();
  }

  async send(batch: Batch): Promise<SendResult> {
    await this.mqtt.waitConnected(this.config.ackTimeout);
    return this.serialised(() => this.sendBatch(batch));
  }

  private async sendBatch(batch: Batch): Promise<SendResult> {
    const publish: Publish = (t, p, o, w) => this.mqtt.publishAcked(t, p, o, w);
    const rejected: number[] = [];
    const accepted: number[] = [];
    const perDevice = new Map<string, Metric[]>();
    const rebirths = new Set<string>();
    batch.events.forEach((stored, i) => {
      const e = JSON.parse(stored.json) as SluiceEvent;
      const device = deviceOf(e, this.config.devices);
      const metrics = metricsOf(e);
      const outcomes = metrics.map((m) => this.model.observe(device, m));
      if (outcomes.includes('full')) {
        rejected.push(i);
        return;
      }
      if (outcomes.includes('birth') || !this.born.has(device)) rebirths.add(device);
      let list = perDevice.get(device);
      if (!list) perDevice.set(device, (list = []));
      // Data accepted before this session's NBIRTH is backlog the host has not seen live.
      const historical = e.ts < this.bornAt;
      for (const m of metrics) list.push(this.dataMetric(device, m, historical));
      accepted.push(i);
    });
    let bytes = 0;
    for (const device of rebirths) await this.deviceBirth(device, publish);
    for (const [device, metrics] of perDevice) {
      const payload = encodePayload({
        timestamp: Date.now(),
        seq: this.nextSeq(),
        metrics,
      });
      bytes += payload.length;
      await publish(this.topic('DDATA', device), payload, this.qos(), `DDATA ${device} of batch ${batch.batchId}`);
    }
    return {
      accepted,
      rejected,
      retry: [],
      bytes,
      error: rejected.length ? `the node already has ${this.config.maxMetrics} metrics (uplinks.${this.config.name}.maxMetrics)` : undefined,
    };
  }

  private dataMetric(device: string, m: EventMetric, historical: boolean): Metric {
    const metric: Metric = { timestamp: m.timestamp, datatype: m.datatype, value: m.value };
    if (this.config.aliases) metric.alias = this.model.alias(device, m.name);
    else metric.name = m.name;
    if (historical) metric.isHistorical = true;
    return metric;
  }
}

function readBdSeq(file: string): number {
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(n) && n >= 0 && n <= 255 ? n : -1;
  } catch {
    return -1;
  }
}
