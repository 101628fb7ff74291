/**
 * The Kinesis uplink: PutRecords against AWS Kinesis Data Streams (or any endpoint speaking its API).
 *
 * Guarantees: a record counts as accepted only when PutRecords returned it without an ErrorCode;
 * per-record failures (throttling, internal errors) retry only those records; a call that fails as a
 * whole (network, credentials, unknown stream) retries everything not yet accepted, with a one-line
 * `lastError`. Calls respect the service limits (≤ 500 records, ≤ 5 MiB, ≤ 1 MiB per record); an
 * event that can never fit a record, or that Kinesis refuses on its own, is rejected (dead-lettered).
 * The SDK's own retries are off: the runner's backoff with jitter is the one retry policy.
 */
import {
  DescribeStreamSummaryCommand,
  KinesisClient,
  PutRecordsCommand,
  type PutRecordsCommandOutput,
  type PutRecordsRequestEntry,
} from '@aws-sdk/client-kinesis';
import { awsClientOptions } from '../aws.js';
import { type OutRecord, planRecords } from '../records.js';
import type { Batch, SendResult, Sink, SinkHealth, SinkContext } from '../sink.js';
import type { KinesisUplinkConfig } from './schema.js';

export const MAX_RECORDS_PER_CALL = 500;
export const MAX_BYTES_PER_CALL = 5 * 1024 * 1024;
export const MAX_RECORD_BYTES = 1024 * 1024;

export class KinesisSink implements Sink {
  private client?: KinesisClient;
  private connected = false;
  private lastError?: string;

  constructor(
    private readonly config: KinesisUplinkConfig,
    private readonly ctx: SinkContext,
  ) {}

  async start(): Promise<void> {
    const c = this.config;
    this.client = new KinesisClient(awsClientOptions(c));
    // A probe, not awaited: an unknown stream or bad credentials show on status before the first batch.
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
    if (!this.client) throw new Error('the Kinesis uplink is not started');
    const plan = await planRecords(batch, {
      aggregate: this.config.aggregate,
      maxRecordBytes: MAX_RECORD_BYTES,
      key: this.config.partitionKey,
      gzip: this.config.gzip,
    });
    const result: SendResult = { accepted: [], rejected: [...plan.tooLarge], retry: [] };
    const errors: string[] = [];
    if (plan.tooLarge.length > 0)
      errors.push(`${plan.tooLarge.length} event(s) exceed the Kinesis record limit of 1 MiB`);
    const calls = chunkCalls(plan.records);
    for (let n = 0; n < calls.length; n++) {
      try {
        await this.put(calls[n], result, errors);
      } catch (err) {
        const msg = describeError(err, this.config.streamName);
        this.noteFailure(err, msg);
        // Nothing settled yet: a thrown error retries the whole batch and becomes lastError.
        if (result.accepted.length === 0 && result.rejected.length === 0) throw new Error(msg);
        for (const rest of calls.slice(n)) for (const r of rest) result.retry.push(...r.indices);
        errors.push(msg);
        break;
      }
    }
    if (errors.length > 0) result.error = errors.join('; ');
    else this.lastError = undefined;
    return result;
  }

  /** One PutRecords call; per-record failures go to retry. A validation failure of the whole call is bisected to find the poison record. */
  private async put(records: OutRecord[], result: SendResult, errors: string[]): Promise<void> {
    let out: PutRecordsCommandOutput;
    try {
      out = await this.client!.send(
        new PutRecordsCommand({ StreamName: this.config.streamName, Records: records.map(toEntry) }),
      );
    } catch (err) {
      if ((err as Error).name !== 'ValidationException') throw err;
      if (records.length === 1) {
        result.rejected.push(...records[0].indices);
        errors.push(`Kinesis refused a record: ${(err as Error).message}`);
        return;
      }
      for (const r of records) await this.put([r], result, errors);
      return;
    }
    this.connected = true;
    const failed: Record<string, number> = {};
    let example = '';
    (out.Records ?? []).forEach((r, i) => {
      if (!records[i]) return;
      if (r.ErrorCode) {
        result.retry.push(...records[i].indices);
        failed[r.ErrorCode] = (failed[r.ErrorCode] ?? 0) + 1;
        example ||= r.ErrorMessage ?? '';
      } else result.accepted.push(...records[i].indices);
    });
    // A response with fewer entries than sent would be a peer bug: retry what it did not answer for.
    for (let i = out.Records?.length ?? 0; i < records.length; i++) result.retry.push(...records[i].indices);
    const codes = Object.entries(failed);
    // Throttled: the shard takes about 1,000 records or 1 MiB a second, so waiting a second is enough.
    if (failed.ProvisionedThroughputExceededException) result.retryAfterMs = 1000;
    if (codes.length > 0) {
      const msg = `Kinesis failed ${out.FailedRecordCount ?? codes.reduce((a, [, v]) => a + v, 0)} of ${records.length} records (${codes.map(([k, v]) => `${k} ×${v}`).join(', ')})${example ? `: ${example}` : ''}`;
      errors.push(msg);
      this.lastError = msg;
    }
  }

  private async probe(): Promise<void> {
    try {
      await this.client?.send(new DescribeStreamSummaryCommand({ StreamName: this.config.streamName }));
      this.connected = true;
    } catch (err) {
      this.noteFailure(err, describeError(err, this.config.streamName));
    }
  }

  private noteFailure(err: unknown, msg: string): void {
    this.lastError = msg;
    // "Connected" means "can deliver": any failure of a whole call clears it, the next success sets it.
    this.connected = false;
    this.ctx.logger.debug({ err }, msg);
  }
}

function toEntry(r: OutRecord): PutRecordsRequestEntry {
  return { Data: r.data, PartitionKey: r.key };
}

/** Groups records into PutRecords calls within the service limits, in order. */
export function chunkCalls(records: OutRecord[]): OutRecord[][] {
  const calls: OutRecord[][] = [];
  let cur: OutRecord[] = [];
  let bytes = 0;
  for (const r of records) {
    const size = r.data.length + Buffer.byteLength(r.key);
    if (cur.length > 0 && (cur.length >= MAX_RECORDS_PER_CALL || bytes + size > MAX_BYTES_PER_CALL)) {
      calls.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(r);
    bytes += size;
  }
  if (cur.length > 0) calls.push(cur);
  return calls;
}

/** One sentence for status: what failed, in the operator's terms. */
export function describeError(err: unknown, stream: string): string {
  const e = err as Error & { code?: string; $metadata?: { httpStatusCode?: number } };
  switch (e.name) {
    case 'ResourceNotFoundException':
      return `Kinesis stream "${stream}" does not exist (ResourceNotFoundException)`;
    case 'UnrecognizedClientException':
    case 'InvalidSignatureException':
    case 'IncompleteSignatureException':
    case 'ExpiredTokenException':
    case 'AccessDeniedException':
    case 'MissingAuthenticationTokenException':
      return `Kinesis refused the credentials (${e.name}): ${e.message}`;
    case 'ProvisionedThroughputExceededException':
    case 'LimitExceededException':
      return `Kinesis throttled the stream "${stream}" (${e.name})`;
    case 'CredentialsProviderError':
      return `no AWS credentials for Kinesis: set accessKeyId and secretAccessKey, or AWS_ACCESS_KEY_ID, a profile or an instance role (${e.message})`;
    case 'TimeoutError':
    case 'RequestTimeout':
      return `Kinesis did not answer in time: ${e.message}`;
  }
  if (e.code && /^E[A-Z]+$/.test(e.code)) return `cannot reach Kinesis (${e.code}): ${e.message}`;
  return `Kinesis call failed (${e.name}${e.$metadata?.httpStatusCode ? `, HTTP ${e.$metadata.httpStatusCode}` : ''}): ${e.message}`;
}
