/**
 * The Kafka uplink: thin glue over a kafkajs idempotent producer (acks = all, one request in
 * flight, so the broker drops the duplicates its own retries would make and keeps order).
 *
 * Guarantees: a batch counts as delivered only when every partition leader acknowledged it with
 * all in-sync replicas; a failed send retries the whole batch (the idempotent producer makes that
 * safe within a producer session) with a one-line `lastError`. `gzip` is Kafka's own record-batch
 * compression. An event larger than `maxMessageBytes`, or that the broker refuses as too large on
 * its own, is rejected (dead-lettered). kafkajs's own retries are kept short: the runner's backoff
 * with jitter is the retry policy.
 */

import { type OutRecord, planRecords } from '../records.js';
import type { Batch, SendResult, Sink, SinkHealth, SinkContext } from '../sink.js';
import { type LoadedTls, loadTls } from '../tls.js';
import type { KafkaUplinkConfig } from './schema.js';

type Kafkajs = typeof import('kafkajs');
type Producer = import('kafkajs').Producer;

export class KafkaSink implements Sink {
  private producer?: Producer;
  private connecting?: Promise<void>;
  private connected = false;
  private lastError?: string;
  private kafkajs?: Kafkajs;

  constructor(
    private readonly config: KafkaUplinkConfig,
    private readonly ctx: SinkContext,
  ) {}

  async start(): Promise<void> {
    const c = this.config;
    this.kafkajs ??= await import('kafkajs');
    const { Kafka, logLevel } = this.kafkajs;
    const tls: LoadedTls | undefined = loadTls(c.tls, c.name);
    const log = this.ctx.logger.child({ uplink: c.name });
    const kafka = new Kafka({
      clientId: c.clientId ?? `sluice-${this.ctx.gatewayId}`,
      brokers: c.brokers,
      ssl: c.ssl ? (tls ?? true) : false,
      sasl: c.sasl as import('kafkajs').SASLOptions | undefined,
      connectionTimeout: c.connectTimeout,
      requestTimeout: c.requestTimeout,
      retry: { retries: 2, initialRetryTime: 300, maxRetryTime: 5_000 },
      logLevel: logLevel.WARN,
      logCreator: () => (entry) => log.debug({ kafkajs: entry.namespace }, entry.log.message),
    });
    this.producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    this.producer.on('producer.connect', () => {
      this.connected = true;
    });
    this.producer.on('producer.disconnect', () => {
      this.connected = false;
    });
    this.ensureConnected().catch(() => undefined);
  }

  async stop(): Promise<void> {
    const p = this.producer;
    this.producer = undefined;
    this.connected = false;
    await p?.disconnect().catch(() => undefined);
  }

  health(): SinkHealth {
    return { connected: this.connected, lastError: this.lastError };
  }

  async send(batch: Batch): Promise<SendResult> {
    const c = this.config;
    // Kafka compresses whole record batches itself: no per-record gzip.
    const plan = await planRecords(batch, {
      aggregate: c.aggregate,
      maxRecordBytes: c.maxMessageBytes,
      key: c.key,
      gzip: false,
      maxKeyChars: 32_767,
    });
    const result: SendResult = { accepted: [], rejected: [...plan.tooLarge], retry: [] };
    const errors: string[] = [];
    if (plan.tooLarge.length > 0)
      errors.push(`${plan.tooLarge.length} event(s) exceed maxMessageBytes (${c.maxMessageBytes} bytes)`);
    if (plan.records.length > 0) {
      try {
        await this.ensureConnected();
        await this.produce(plan.records, result, errors);
      } catch (err) {
        const msg = describeError(err, c.topic);
        this.lastError = msg;
        this.ctx.logger.debug({ err }, msg);
        throw new Error(msg);
      }
    }
    if (errors.length > 0) this.lastError = result.error = `Kafka: ${errors.join('; ')}`;
    else this.lastError = undefined;
    return result;
  }

  /** One produce request; a "too large" refusal of several records is split to find the one to reject. */
  private async produce(records: OutRecord[], result: SendResult, errors: string[]): Promise<void> {
    const { CompressionTypes } = this.kafkajs!;
    try {
      await this.producer!.send({
        topic: this.config.topic,
        acks: -1,
        timeout: this.config.requestTimeout,
        compression: this.config.gzip ? CompressionTypes.GZIP : CompressionTypes.None,
        messages: records.map((r) => ({ key: r.key, value: r.data, headers: { 'sluice-id': r.id } })),
      });
    } catch (err) {
      if (!isTooLarge(err)) throw err;
      if (records.length === 1) {
        result.rejected.push(...records[0].indices);
        errors.push('the broker refused a record as too large (MESSAGE_TOO_LARGE)');
        return;
      }
      const half = Math.ceil(records.length / 2);
      await this.produce(records.slice(0, half), result, errors);
      await this.produce(records.slice(half), result, errors);
      return;
    }
    for (const r of records) result.accepted.push(...r.indices);
  }

  private async ensureConnected(): Promise<void> {
    if (!this.producer) throw new Error('the Kafka uplink is not started');
    if (this.connected) return;
    this.connecting ??= this.producer
      .connect()
      .catch((err) => {
        this.lastError = describeError(err, this.config.topic);
        throw err;
      })
      .finally(() => {
        this.connecting = undefined;
      });
    await this.connecting;
  }
}

function isTooLarge(err: unknown): boolean {
  const e = err as { type?: string; cause?: unknown; errors?: unknown[] };
  if (e?.type === 'MESSAGE_TOO_LARGE' || e?.type === 'RECORD_LIST_TOO_LARGE') return true;
  return (e?.errors ?? []).some(isTooLarge) || (e?.cause !== undefined && isTooLarge(e.cause));
}

export function describeError(err: unknown, topic: string): string {
  const e = err as Error & { type?: string; code?: string; cause?: Error & { code?: string } };
  const type = e.type ?? (e.cause as { type?: string } | undefined)?.type;
  if (type === 'UNKNOWN_TOPIC_OR_PARTITION')
    return `Kafka topic "${topic}" does not exist (UNKNOWN_TOPIC_OR_PARTITION)`;
  if (
    type === 'TOPIC_AUTHORIZATION_FAILED' ||
    type === 'SASL_AUTHENTICATION_FAILED' ||
    e.name === 'KafkaJSSASLAuthenticationError'
  )
    return `Kafka refused the credentials (${type ?? e.name}): ${e.message}`;
  if (e.name === 'KafkaJSConnectionError' || e.name === 'KafkaJSNumberOfRetriesExceeded' || e.code || e.cause?.code)
    return `cannot reach the Kafka brokers: ${e.message}`;
  if (e.name === 'KafkaJSRequestTimeoutError') return `the Kafka brokers did not answer in time: ${e.message}`;
  return `Kafka send failed (${type ?? e.name}): ${e.message}`;
}
