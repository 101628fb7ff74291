/**
 * The S3 uplink: one object per batch, NDJSON (one event envelope per line), gzipped, at
 * `<prefix>/<gateway id>/YYYY/MM/DD/HH/<batchId>.ndjson.gz` (UTC hour of the batch's first event),
 * the layout Spark, Athena and Glue read as a partitioned table.
 *
 * Guarantees: a batch counts as delivered only when PutObject succeeded; the key is derived from
 * the batch id, so a retried batch overwrites its own object instead of duplicating it. S3 accepts
 * or refuses an object as a whole: any failure retries the whole batch, with a one-line
 * `lastError` (unknown bucket, refused credentials, unreachable or silent endpoint).
 */

import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';
import { HeadBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { awsClientOptions } from '../aws.js';
import type { StoredEvent } from '../../src/core/event.js';
import { allAccepted, type Batch, type SendResult, type Sink, type SinkHealth, type SinkContext } from '../sink.js';
import type { S3UplinkConfig } from './schema.js';

const gzip = promisify(gzipCb);

export class S3Sink implements Sink {
  private client?: S3Client;
  private connected = false;
  private lastError?: string;

  constructor(
    private readonly config: S3UplinkConfig,
    private readonly ctx: SinkContext,
  ) {}

  async start(): Promise<void> {
    const c = this.config;
    this.client = new S3Client({
      ...awsClientOptions(c),
      forcePathStyle: c.forcePathStyle,
      // Checksums only where S3 requires them: the newer default (CRC32 trailers) is not understood
      // by many S3-compatible stores on gateways' LANs.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    void this.probe();
  }

  async stop(): Promise<void> {
    this.client?.destroy();
    this.client = undefined;
    this.connected = false;
  }

  health(): SinkHealth {
    return { connected: this.connected, lastError: this.lastError };
  }

  async send(batch: Batch): Promise<SendResult> {
    if (!this.client) throw new Error('the S3 uplink is not started');
    const key = objectKey(this.config.prefix, batch, this.config.gzip);
    const ndjson = Buffer.from(toNdjson(batch.events));
    const body = this.config.gzip ? await gzip(ndjson) : ndjson;
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.config.bucket,
          Key: key,
          Body: body,
          ContentType: this.config.gzip ? 'application/gzip' : 'application/x-ndjson',
          StorageClass: this.config.storageClass,
          Metadata: {
            'sluice-gateway': batch.gateway,
            'sluice-batch-id': batch.batchId,
            'sluice-events': String(batch.events.length),
          },
        }),
      );
    } catch (err) {
      const msg = describeError(err, this.config.bucket);
      this.lastError = msg;
      this.connected = false;
      this.ctx.logger.debug({ err, key }, msg);
      throw new Error(msg);
    }
    this.connected = true;
    this.lastError = undefined;
    return allAccepted(batch);
  }

  private async probe(): Promise<void> {
    try {
      await this.client?.send(new HeadBucketCommand({ Bucket: this.config.bucket }));
      this.connected = true;
    } catch (err) {
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      // Some S3-compatible stores do not implement HeadBucket (405/501): only report what is certain.
      if (status === 405 || status === 501) return;
      this.lastError = describeError(err, this.config.bucket);
    }
  }
}

/** `<prefix>/<gateway>/YYYY/MM/DD/HH/<batchId>.ndjson.gz`, the hour (UTC) from the first event's `ts`. */
export function objectKey(prefix: string, batch: Batch, gzipped = true): string {
  const d = new Date(batch.events[0]?.ts ?? Date.now());
  const p2 = (n: number) => String(n).padStart(2, '0');
  const path = `${batch.gateway}/${d.getUTCFullYear()}/${p2(d.getUTCMonth() + 1)}/${p2(d.getUTCDate())}/${p2(d.getUTCHours())}/${batch.batchId}.ndjson${gzipped ? '.gz' : ''}`;
  return prefix ? `${prefix}/${path}` : path;
}

/** One event per line. Stored JSON keeps an MQTT body verbatim, which may span lines: such events are re-encoded onto one. */
export function toNdjson(events: StoredEvent[]): string {
  let s = '';
  for (const e of events) s += `${/[\r\n]/.test(e.json) ? JSON.stringify(JSON.parse(e.json)) : e.json}\n`;
  return s;
}

export function describeError(err: unknown, bucket: string): string {
  const e = err as Error & { code?: string; Code?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  switch (e.name) {
    case 'NoSuchBucket':
      return `S3 bucket "${bucket}" does not exist (NoSuchBucket)`;
    case 'InvalidAccessKeyId':
    case 'SignatureDoesNotMatch':
    case 'AccessDenied':
    case 'ExpiredToken':
    case 'InvalidToken':
      return `S3 refused the credentials for bucket "${bucket}" (${e.name})`;
    case 'CredentialsProviderError':
      return `no AWS credentials for S3: set accessKeyId and secretAccessKey, or AWS_ACCESS_KEY_ID, a profile or an instance role (${e.message})`;
    case 'TimeoutError':
    case 'RequestTimeout':
      return `S3 did not answer in time: ${e.message}`;
  }
  if (status === 404) return `S3 bucket "${bucket}" does not exist (HTTP 404)`;
  if (status === 403) return `S3 refused the credentials for bucket "${bucket}" (HTTP 403)`;
  if (e.code && /^E[A-Z]+$/.test(e.code)) return `cannot reach S3 (${e.code}): ${e.message}`;
  return `S3 PutObject failed (${e.name}${status ? `, HTTP ${status}` : ''}): ${e.message}`;
}
