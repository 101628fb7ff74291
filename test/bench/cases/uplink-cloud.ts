/**
 * Cloud sinks and local consumers, each side by side with its bare client in one run: a backlog in a
 * real ring log drained through the shared runner (cursor, batching, acks) and the sink, vs the bare
 * client library sending the same records or objects, one request at a time, waiting for each answer.
 * - `uplink.kinesis.drain`: kinesalite (in-process), PutRecords of 500 records; bare: PutRecords.
 * - `uplink.s3.drain`: s3rver, one gzipped NDJSON object per 10k-event batch; bare: PutObject.
 * - `uplink.eventhubs.drain`: RabbitMQ's AMQP 1.0 plugin, one message per event; bare: rhea sender.
 * - `local.consumer.drain`: HTTP long poll (`max=1000`) + ack by batch id; bare: the ring-log reader
 *   in-process (next + commit), the floor the HTTP layer adds to.
 * Peers here are test doubles of the cloud services (kinesalite is far slower than Kinesis): the
 * ratio to the bare client is the figure that says what the gateway costs.
 */
import { gzipSync } from 'node:zlib';
import { CreateStreamCommand, DescribeStreamCommand, KinesisClient, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import amqplib from 'amqplib';
import kinesalite from 'kinesalite';
import { Registry } from 'prom-client';
import rhea, { type EventContext } from 'rhea';
import S3rver from 's3rver';
import { openRingLog } from '../../../buffer/index.js';
import type { RingLog } from '../../../buffer/types.js';
import { bufferSchema } from '../../../src/config/schema.js';
import { type EventInput, encodeEvent } from '../../../src/core/event.js';
import { silentLogger } from '../../../src/core/log.js';
import { HttpServer } from '../../../src/core/http-server.js';
import { createSink } from '../../../uplink/index.js';
import { registerLocalConsumers } from '../../../uplink/local/index.js';
import { readerOptions, UplinkRunner } from '../../../uplink/runner.js';
import { type UplinkConfig, uplinkSchema } from '../../../uplink/schema.js';
import { ensureRabbitMQAmqp10, freePort } from '../../helpers/peers.js';
import type { BenchCase, BenchContext, BenchResult } from '../types.js';

function reading(i: number): EventInput {
  return { source: 'bench', topic: `sensors/s${i % 100}/temp`, payload: { value: 20 + (i % 50) / 10, unit: '°C' } };
}

function eventJson(i: number): string {
  return encodeEvent('gw-bench', i + 1, Date.now(), reading(i));
}

async function backlog(ctx: BenchContext, n: number): Promise<RingLog> {
  const log = await openRingLog({ dir: ctx.tempDir(), gatewayId: 'gw-bench', config: bufferSchema.parse({ maxBytes: '2GiB' }) });
  for (let i = 0; i < n; i += 5000) await log.append(Array.from({ length: Math.min(5000, n - i) }, (_, k) => reading(i + k)));
  return log;
}

/** Drains `n` events through the runner and the sink; events/s until the runner reports none pending. */
async function drainThroughRunner(ctx: BenchContext, config: UplinkConfig, n: number): Promise<{ rate: number; complete: boolean; lastError: string | null }> {
  const log = await backlog(ctx, n);
  const sink = await createSink(config, { gatewayId: 'gw-bench', logger: silentLogger, dataDir: ctx.tempDir() });
  const runner = new UplinkRunner({ config, sink, reader: log.reader(config.name, readerOptions(config)), gatewayId: 'gw-bench', logger: silentLogger, registry: new Registry() });
  const t0 = performance.now();
  runner.start();
  const deadline = Date.now() + 240_000;
  while (runner.status().deliveredEvents < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  const seconds = (performance.now() - t0) / 1000;
  const st = runner.status();
  await runner.stop(5000);
  await log.close();
  return { rate: st.deliveredEvents / seconds, complete: st.deliveredEvents >= n, lastError: st.lastError };
}

function result(name: string, rate: number, baseline: number, extra: Record<string, unknown>): BenchResult {
  return {
    name: `${name}.drain`,
    value: Math.round(rate),
    unit: 'events/s',
    baseline: Math.round(baseline),
    baselineName: `${name}.bare-client`,
    ratio: Number((rate / baseline).toFixed(3)),
    ...extra,
  };
}

const common = { retry: { initialDelay: '50ms', maxDelay: '1s' } };

const kinesis: BenchCase = {
  name: 'uplink-cloud-kinesis',
  description: 'backlog to kinesalite through the runner + Kinesis sink vs bare PutRecords',
  timeoutMs: 300_000,
  async run(ctx) {
    const n = ctx.quick ? 10_000 : 50_000;
    const server = kinesalite({ createStreamMs: 0 });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const client = new KinesisClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, requestHandler: new NodeHttpHandler() });
    try {
      for (const s of ['base', 'sink']) await client.send(new CreateStreamCommand({ StreamName: s, ShardCount: 4 }));
      while ((await client.send(new DescribeStreamCommand({ StreamName: 'sink' }))).StreamDescription?.StreamStatus !== 'ACTIVE') await new Promise((r) => setTimeout(r, 20));
      ctx.log(`kinesis: bare PutRecords, ${n} records`);
      const records = Array.from({ length: 500 }, (_, i) => ({ Data: Buffer.from(eventJson(i)), PartitionKey: reading(i).topic }));
      let t0 = performance.now();
      for (let i = 0; i < n; i += 500) await client.send(new PutRecordsCommand({ StreamName: 'base', Records: records }));
      const baseline = n / ((performance.now() - t0) / 1000);
      ctx.log(`kinesis: runner + sink, ${n} events`);
      t0 = performance.now();
      const config = uplinkSchema.parse({ name: 'kinesis', type: 'kinesis', streamName: 'sink', endpoint, accessKeyId: 'a', secretAccessKey: 'b', batch: { maxEvents: 500, maxDelay: '20ms' }, ...common });
      const r = await drainThroughRunner(ctx, config, n);
      ctx.log(`kinesis: ${Math.round(r.rate)} events/s vs bare ${Math.round(baseline)}`);
      return [result('uplink.kinesis', r.rate, baseline, { events: n, recordsPerCall: 500, complete: r.complete, lastError: r.lastError, peer: 'kinesalite' })];
    } finally {
      client.destroy();
      await new Promise((r) => server.close(r));
    }
  },
};

const s3: BenchCase = {
  name: 'uplink-cloud-s3',
  description: 'backlog to s3rver through the runner + S3 sink (10k-event gzipped NDJSON objects) vs bare PutObject',
  timeoutMs: 300_000,
  async run(ctx) {
    const n = ctx.quick ? 50_000 : 200_000;
    const per = 10_000;
    const port = await freePort();
    const server = new S3rver({ address: '127.0.0.1', port, silent: true, directory: ctx.tempDir(), configureBuckets: [{ name: 'lake' }] });
    await server.run();
    const endpoint = `http://127.0.0.1:${port}`;
    const creds = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
    const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { ...creds }, requestChecksumCalculation: 'WHEN_REQUIRED' });
    try {
      ctx.log(`s3: bare PutObject, ${n / per} objects of ${per} events`);
      let ndjson = '';
      for (let i = 0; i < per; i++) ndjson += `${eventJson(i)}\n`;
      let t0 = performance.now();
      // The bare side gzips each object too: the sink's work includes it.
      for (let i = 0; i < n; i += per) await client.send(new PutObjectCommand({ Bucket: 'lake', Key: `base/${i}.ndjson.gz`, Body: gzipSync(ndjson) }));
      const baseline = n / ((performance.now() - t0) / 1000);
      ctx.log(`s3: runner + sink, ${n} events`);
      t0 = performance.now();
      const config = uplinkSchema.parse({ name: 'lake', type: 's3', bucket: 'lake', endpoint, forcePathStyle: true, ...creds, batch: { maxEvents: per, maxBytes: '8MiB', maxDelay: '20ms' }, ...common });
      const r = await drainThroughRunner(ctx, config, n);
      ctx.log(`s3: ${Math.round(r.rate)} events/s vs bare ${Math.round(baseline)}`);
      return [result('uplink.s3', r.rate, baseline, { events: n, eventsPerObject: per, complete: r.complete, lastError: r.lastError, peer: 's3rver' })];
    } finally {
      client.destroy();
      await server.close();
    }
  },
};

const eventhubs: BenchCase = {
  name: 'uplink-cloud-eventhubs',
  description: "backlog to RabbitMQ's AMQP 1.0 plugin through the runner + Event Hubs sink vs a bare rhea sender",
  timeoutMs: 300_000,
  async run(ctx) {
    const n = ctx.quick ? 20_000 : 100_000;
    const { url } = await ensureRabbitMQAmqp10();
    const conn = await amqplib.connect(url);
    const ch = await conn.createChannel();
    const q = { base: `sluice-bench-base-${process.pid}`, sink: `sluice-bench-sink-${process.pid}` };
    for (const name of Object.values(q)) await ch.assertQueue(name, { durable: false });
    try {
      ctx.log(`eventhubs: bare rhea sender, ${n} messages`);
      const bodies = Array.from({ length: 1000 }, (_, i) => Buffer.from(eventJson(i)));
      const baseline = await bareRhea(q.base, bodies, n);
      ctx.log(`eventhubs: runner + sink, ${n} events`);
      const config = uplinkSchema.parse({ name: 'hub', type: 'eventhubs', host: '127.0.0.1', port: 5672, transport: 'tcp', auth: 'plain', keyName: 'guest', key: 'guest', address: q.sink, batch: { maxEvents: 1000, maxDelay: '20ms' }, ...common });
      const r = await drainThroughRunner(ctx, config, n);
      ctx.log(`eventhubs: ${Math.round(r.rate)} events/s vs bare ${Math.round(baseline)}`);
      return [result('uplink.eventhubs', r.rate, baseline, { events: n, messagesPerBatch: 1000, complete: r.complete, lastError: r.lastError, peer: 'RabbitMQ 3.x amqp1_0' })];
    } finally {
      for (const name of Object.values(q)) await ch.deleteQueue(name).catch(() => undefined);
      await conn.close();
    }
  },
};

/** Sends `n` messages in rounds of `bodies.length`, each round waiting for every settlement. */
async function bareRhea(address: string, bodies: Buffer[], n: number): Promise<number> {
  const container = rhea.create_container({ id: 'bench-bare' });
  const conn = container.connect({ host: '127.0.0.1', port: 5672, username: 'guest', password: 'guest', reconnect: false });
  const sender = conn.open_sender({ target: { address } });
  await new Promise((r) => sender.once('sendable', r));
  const t0 = performance.now();
  for (let sent = 0; sent < n; sent += bodies.length) {
    await new Promise<void>((resolve) => {
      let open = bodies.length;
      let next = 0;
      const settled = () => {
        if (--open === 0) {
          sender.off('accepted', settled);
          sender.off('sendable', pump);
          resolve();
        }
      };
      const pump = () => {
        while (next < bodies.length && sender.sendable()) {
          // The same message the sink sends: id, content type and partition key.
          const i = next++;
          sender.send({
            body: rhea.message.data_section(bodies[i]),
            message_id: `gw-bench:${sent + i + 1}`,
            content_type: 'application/json',
            message_annotations: { 'x-opt-partition-key': reading(i).topic },
          });
        }
      };
      sender.on('accepted', settled);
      sender.on('sendable', pump);
      pump();
    });
  }
  const rate = n / ((performance.now() - t0) / 1000);
  conn.close();
  await new Promise((r) => conn.once('connection_close', r as (c: EventContext) => void));
  return rate;
}

const local: BenchCase = {
  name: 'local-consumer',
  description: 'backlog read over HTTP by a local consumer (long poll max=1000 + ack) vs the ring-log reader in-process',
  timeoutMs: 300_000,
  async run(ctx) {
    const n = ctx.quick ? 50_000 : 300_000;
    ctx.log(`local: in-process reader, ${n} events`);
    let log = await backlog(ctx, n);
    const reader = log.reader('bare');
    let t0 = performance.now();
    for (let got = 0; got < n; ) {
      const evs = await reader.next(1000, 1024 * 1024);
      got += evs.length;
      await reader.commit(evs[evs.length - 1].seq);
    }
    const baseline = n / ((performance.now() - t0) / 1000);
    await log.close();

    ctx.log(`local: HTTP long poll + ack, ${n} events`);
    log = await backlog(ctx, n);
    const http = new HttpServer(silentLogger);
    const consumers = registerLocalConsumers(http, log, { logger: silentLogger });
    await http.listen('127.0.0.1', 0);
    const base = `http://127.0.0.1:${http.address!.port}`;
    t0 = performance.now();
    let got = 0;
    while (got < n) {
      const doc = (await (await fetch(`${base}/api/events?consumer=bench&max=1000`)).json()) as { batchId: string; events: unknown[] };
      got += doc.events.length;
      await fetch(`${base}/api/events/ack`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ consumer: 'bench', batchId: doc.batchId }),
      });
    }
    const rate = n / ((performance.now() - t0) / 1000);
    consumers.close();
    await http.close();
    await log.close();
    ctx.log(`local: ${Math.round(rate)} events/s vs in-process ${Math.round(baseline)}`);
    return [result('local.consumer', rate, baseline, { events: n, batchEvents: 1000, mode: 'long poll, one reader' })];
  },
};

export default [kinesis, s3, eventhubs, local];
