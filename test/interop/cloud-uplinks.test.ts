/**
 * The cloud sinks behind the shared runner, on the real ring log and real peers: kinesalite (through
 * a TCP proxy that goes down for a while), s3rver, and RabbitMQ's AMQP 1.0 plugin as the Event Hubs
 * peer. Events keep arriving during the outage; the other uplinks are unaffected, and the stopped one
 * catches up with no loss once its peer is back. One event is too large for the hub: dead-lettered
 * there, delivered everywhere else, and it holds nothing up.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { CreateStreamCommand, DescribeStreamCommand, GetRecordsCommand, GetShardIteratorCommand, KinesisClient } from '@aws-sdk/client-kinesis';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import amqplib from 'amqplib';
import kinesalite from 'kinesalite';
import { Registry } from 'prom-client';
import S3rver from 's3rver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRingLog } from '../../buffer/index.js';
import type { RingLog } from '../../buffer/types.js';
import { bufferSchema } from '../../src/config/schema.js';
import { silentLogger } from '../../src/core/log.js';
import { createSink } from '../../uplink/index.js';
import { readerOptions, UplinkRunner } from '../../uplink/runner.js';
import { type UplinkConfig, uplinkSchema } from '../../uplink/schema.js';
import { ensureRabbitMQAmqp10, freePort, tempDir } from '../helpers/peers.js';
import { until } from '../helpers/until.js';

const TOTAL = 10_000;
const POISON = 5001;
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A TCP proxy whose listener can be taken down (connections refused, open ones reset) and brought back on the same port. */
async function switchableProxy(target: number): Promise<{ port: number; down(): Promise<void>; up(): Promise<void>; close(): Promise<void> }> {
  const port = await freePort();
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const up = async () => {
    server = createServer((c) => {
      const u = createConnection(target, '127.0.0.1');
      sockets.add(c).add(u);
      c.pipe(u).pipe(c);
      const end = () => {
        c.destroy();
        u.destroy();
        sockets.delete(c);
        sockets.delete(u);
      };
      c.on('error', end).on('close', end);
      u.on('error', end).on('close', end);
    });
    await new Promise<void>((r) => server!.listen(port, '127.0.0.1', r));
  };
  const down = async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server?.close(r));
    server = undefined;
  };
  await up();
  return { port, up, down, close: down };
}

let log: RingLog;
let kinesisAdmin: KinesisClient;
let s3: S3Client;
let amqp: amqplib.ChannelModel;
let kinesisProxy: Awaited<ReturnType<typeof switchableProxy>>;
const queue = `sluice-interop-${process.pid}`;
let s3Port: number;

beforeAll(async () => {
  const dir = tempDir('sluice-interop-');
  cleanups.push(() => dir.cleanup());
  log = await openRingLog({ dir: `${dir.path}/data`, gatewayId: 'gw-i', config: bufferSchema.parse({}), logger: silentLogger });
  cleanups.push(() => log.close());

  const kin = kinesalite({ createStreamMs: 0 });
  await new Promise<void>((r) => kin.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => kin.close(r)));
  const kinPort = (kin.address() as { port: number }).port;
  kinesisAdmin = new KinesisClient({ endpoint: `http://127.0.0.1:${kinPort}`, region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, requestHandler: new NodeHttpHandler() });
  cleanups.push(() => kinesisAdmin.destroy());
  await kinesisAdmin.send(new CreateStreamCommand({ StreamName: 'telemetry', ShardCount: 2 }));
  await until(async () => (await kinesisAdmin.send(new DescribeStreamCommand({ StreamName: 'telemetry' }))).StreamDescription?.StreamStatus === 'ACTIVE', 30_000);
  kinesisProxy = await switchableProxy(kinPort);
  cleanups.push(() => kinesisProxy.close());

  s3Port = await freePort();
  const s3Dir = tempDir('sluice-interop-s3-');
  const s3rver = new S3rver({ address: '127.0.0.1', port: s3Port, silent: true, directory: s3Dir.path, configureBuckets: [{ name: 'lake' }] });
  await s3rver.run();
  cleanups.push(async () => {
    await s3rver.close();
    s3Dir.cleanup();
  });
  s3 = new S3Client({ endpoint: `http://127.0.0.1:${s3Port}`, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
  cleanups.push(() => s3.destroy());

  // The Event Hubs peer: RabbitMQ's AMQP 1.0; the test reads what arrived over AMQP 0-9-1.
  const { url } = await ensureRabbitMQAmqp10();
  amqp = await amqplib.connect(url);
  const ch = await amqp.createChannel();
  await ch.assertQueue(queue, { durable: false });
  cleanups.push(async () => {
    await ch.deleteQueue(queue).catch(() => undefined);
    await amqp.close();
  });
}, 120_000);

function configs(): UplinkConfig[] {
  const common = { batch: { maxEvents: 500, maxDelay: '20ms' }, retry: { initialDelay: '100ms', maxDelay: '400ms' } };
  return [
    { name: 'kinesis', type: 'kinesis', streamName: 'telemetry', endpoint: `http://127.0.0.1:${kinesisProxy.port}`, accessKeyId: 'a', secretAccessKey: 'b', requestTimeout: '2s', connectTimeout: '500ms', ...common },
    { name: 'lake', type: 's3', bucket: 'lake', endpoint: `http://127.0.0.1:${s3Port}`, forcePathStyle: true, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', ...common },
    { name: 'hub', type: 'eventhubs', host: '127.0.0.1', port: 5672, transport: 'tcp', auth: 'plain', keyName: 'guest', key: 'guest', address: queue, ackTimeout: '3s', maxMessageBytes: '4KiB', ...common },
  ].map((c) => uplinkSchema.parse(c));
}

async function kinesisSeqs(): Promise<Set<number>> {
  const seen = new Set<number>();
  const d = await kinesisAdmin.send(new DescribeStreamCommand({ StreamName: 'telemetry' }));
  for (const shard of d.StreamDescription?.Shards ?? []) {
    let it = (await kinesisAdmin.send(new GetShardIteratorCommand({ StreamName: 'telemetry', ShardId: shard.ShardId, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
    for (let i = 0; i < 100 && it; i++) {
      const r = await kinesisAdmin.send(new GetRecordsCommand({ ShardIterator: it, Limit: 10_000 }));
      for (const rec of r.Records ?? []) seen.add(JSON.parse(Buffer.from(rec.Data!).toString()).seq);
      if ((r.Records ?? []).length === 0) break;
      it = r.NextShardIterator;
    }
  }
  return seen;
}

async function s3Seqs(): Promise<Set<number>> {
  const seen = new Set<number>();
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: 'lake', Prefix: 'sluice/gw-i/', ContinuationToken: token }));
    for (const o of page.Contents ?? []) {
      expect(o.Key).toMatch(/^sluice\/gw-i\/\d{4}\/\d{2}\/\d{2}\/\d{2}\/\d+-\d+\.ndjson\.gz$/);
      const obj = await s3.send(new GetObjectCommand({ Bucket: 'lake', Key: o.Key }));
      const text = gunzipSync(Buffer.from(await obj.Body!.transformToByteArray())).toString();
      for (const line of text.trimEnd().split('\n')) seen.add(JSON.parse(line).seq);
    }
    token = page.NextContinuationToken;
  } while (token);
  return seen;
}

describe('cloud uplinks behind the runner', () => {
  it('deliver the same 10k events to kinesalite, s3rver and RabbitMQ 1.0, one peer down for a while, with no loss', async () => {
    const cfgs = configs();
    const runners: UplinkRunner[] = [];
    for (const config of cfgs) {
      const sink = await createSink(config, { gatewayId: 'gw-i', logger: silentLogger, dataDir: '/nonexistent' });
      const r = new UplinkRunner({ config, sink, reader: log.reader(config.name, readerOptions(config)), gatewayId: 'gw-i', logger: silentLogger, registry: new Registry() });
      runners.push(r);
      r.start();
    }
    cleanups.push(async () => {
      for (const r of runners) await r.stop(2000);
    });
    const byName = (n: string) => runners[cfgs.findIndex((c) => c.name === n)].status();

    // live ingest in 100 appends of 100 events; Kinesis goes away after the first 3,000
    for (let k = 0; k < 100; k++) {
      // Event 5,001 is a poison event for the hub (larger than its maxMessageBytes); the others take it.
      await log.append(Array.from({ length: 100 }, (_, i) => ({ source: 'test', topic: `plant/line${i % 4}/temp`, payload: k * 100 + i === POISON - 1 ? { v: POISON - 1, blob: 'x'.repeat(8000) } : { v: k * 100 + i } })));
      if (k === 30) await kinesisProxy.down();
      await new Promise((r) => setTimeout(r, 10));
    }
    // while Kinesis is down the other two deliver everything
    await until(() => byName('lake').deliveredEvents >= TOTAL && byName('hub').deliveredEvents + byName('hub').deadLettered >= TOTAL, 30_000);
    const k = byName('kinesis');
    expect(k.connected).toBe(false);
    expect(k.lastError).toMatch(/Kinesis|reach/);
    expect(k.pendingEvents).toBeGreaterThan(0);
    await kinesisProxy.up();
    await until(() => byName('kinesis').pendingEvents === 0, 30_000);

    const expected = Array.from({ length: TOTAL }, (_, i) => i + 1);
    expect([...(await kinesisSeqs())].sort((a, b) => a - b)).toEqual(expected);
    expect([...(await s3Seqs())].sort((a, b) => a - b)).toEqual(expected);
    const ch = await amqp.createChannel();
    const hub = new Set<number>();
    for (;;) {
      const m = await ch.get(queue, { noAck: true });
      if (!m) break;
      hub.add(JSON.parse(m.content.toString()).seq);
    }
    await ch.close();
    expect([...hub].sort((a, b) => a - b)).toEqual(expected.filter((s) => s !== POISON));
    expect(byName('hub')).toMatchObject({ pendingEvents: 0, deadLettered: 1 });
    expect(byName('kinesis')).toMatchObject({ pendingEvents: 0, deadLettered: 0 });
    expect(byName('lake')).toMatchObject({ pendingEvents: 0, deadLettered: 0 });
  }, 90_000);
});
