import { createServer as createHttpServer, request, type Server } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { gunzipSync } from 'node:zlib';
import {
  type _Record,
  CreateStreamCommand,
  DescribeStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
} from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import kinesalite from 'kinesalite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../src/core/event.js';
import { silentLogger } from '../../src/core/log.js';
import { chunkCalls, KinesisSink } from './index.js';
import { type KinesisUplinkConfig, kinesisUplinkSchema } from './schema.js';
import { batchOf, storedEvents } from '../../test/helpers/uplink/stored-events.js';

const creds = { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' };
let server: Server;
let endpoint: string;
let admin: KinesisClient;

beforeAll(async () => {
  server = kinesalite({ createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 100 });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  admin = new KinesisClient({
    endpoint,
    region: 'us-east-1',
    credentials: { ...creds },
    requestHandler: new NodeHttpHandler(),
  });
});

afterAll(async () => {
  admin?.destroy();
  await new Promise<void>((r) => server.close(() => r()));
});

let streamNo = 0;
async function createStream(shards = 1): Promise<string> {
  const name = `s${++streamNo}`;
  await admin.send(new CreateStreamCommand({ StreamName: name, ShardCount: shards }));
  for (let i = 0; i < 50; i++) {
    const d = await admin.send(new DescribeStreamCommand({ StreamName: name }));
    if (d.StreamDescription?.StreamStatus === 'ACTIVE') return name;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('stream did not become active');
}

async function readAll(stream: string): Promise<_Record[]> {
  const d = await admin.send(new DescribeStreamCommand({ StreamName: stream }));
  const out: _Record[] = [];
  for (const shard of d.StreamDescription?.Shards ?? []) {
    let it = (
      await admin.send(
        new GetShardIteratorCommand({ StreamName: stream, ShardId: shard.ShardId, ShardIteratorType: 'TRIM_HORIZON' }),
      )
    ).ShardIterator;
    for (let i = 0; i < 20 && it; i++) {
      const r = await admin.send(new GetRecordsCommand({ ShardIterator: it, Limit: 10_000 }));
      out.push(...(r.Records ?? []));
      if ((r.Records ?? []).length === 0) break;
      it = r.NextShardIterator;
    }
  }
  return out;
}

const events = (n: number, from = 1, payload: (i: number) => unknown = (i) => ({ value: i })): StoredEvent[] =>
  storedEvents(n, { from, ts: (seq) => 1732400000000 + seq, payload });

const batch = batchOf;

function config(extra: Record<string, unknown>): KinesisUplinkConfig {
  return kinesisUplinkSchema.parse({
    name: 'k',
    type: 'kinesis',
    endpoint,
    ...creds,
    requestTimeout: '2s',
    connectTimeout: '1s',
    ...extra,
  });
}

async function started(cfg: KinesisUplinkConfig): Promise<KinesisSink> {
  const sink = new KinesisSink(cfg, { gatewayId: 'gw-t', logger: silentLogger });
  await sink.start();
  return sink;
}

describe('kinesis uplink against kinesalite', () => {
  it('puts one record per event keyed by topic, in order, across several PutRecords calls', async () => {
    const stream = await createStream();
    const sink = await started(config({ streamName: stream }));
    const evs = events(1200);
    const res = await sink.send(batch(evs));
    expect(res.accepted).toHaveLength(1200);
    expect(res.rejected).toEqual([]);
    expect(res.retry).toEqual([]);
    const recs = await readAll(stream);
    expect(recs.map((r) => JSON.parse(Buffer.from(r.Data!).toString()).seq)).toEqual(evs.map((e) => e.seq));
    expect(recs.map((r) => r.PartitionKey)).toEqual(evs.map((e) => e.topic));
    expect(sink.health()).toEqual({ connected: true, lastError: undefined });
    await sink.stop();
  });

  it('with aggregate, sends one gzipped contract batch per record', async () => {
    const stream = await createStream();
    const sink = await started(config({ streamName: stream, aggregate: true, gzip: true }));
    const evs = events(300, 1001);
    const res = await sink.send(batch(evs));
    expect(res.accepted).toHaveLength(300);
    const recs = await readAll(stream);
    expect(recs).toHaveLength(1);
    const doc = JSON.parse(gunzipSync(Buffer.from(recs[0].Data!)).toString());
    expect(doc.gateway).toBe('gw-t');
    expect(doc.batchId).toBe('1001-1300');
    expect(doc.events.map((e: { seq: number }) => e.seq)).toEqual(evs.map((e) => e.seq));
    expect(recs[0].PartitionKey).toBe('gw-t');
    await sink.stop();
  });

  it('rejects an event larger than a record may be and delivers the rest', async () => {
    const stream = await createStream();
    const sink = await started(config({ streamName: stream }));
    const evs = events(5, 1, (i) => (i === 3 ? 'x'.repeat(1100 * 1024) : i));
    const res = await sink.send(batch(evs));
    expect(res.rejected).toEqual([2]);
    expect(res.accepted.sort()).toEqual([0, 1, 3, 4]);
    expect(res.error).toMatch(/exceed the Kinesis record limit/);
    expect((await readAll(stream)).map((r) => JSON.parse(Buffer.from(r.Data!).toString()).seq)).toEqual([1, 2, 4, 5]);
    await sink.stop();
  });

  it('names an unknown stream in the error and on health', async () => {
    const sink = await started(config({ streamName: 'no-such-stream' }));
    await expect(sink.send(batch(events(3)))).rejects.toThrow('Kinesis stream "no-such-stream" does not exist');
    expect(sink.health().connected).toBe(false);
    expect(sink.health().lastError).toMatch(/does not exist/);
    await sink.stop();
  });

  it('gives up on a peer that accepts the connection and never answers, within requestTimeout', async () => {
    const sockets: Socket[] = [];
    const hole = createTcpServer((s) => sockets.push(s));
    await new Promise<void>((r) => hole.listen(0, '127.0.0.1', r));
    const sink = await started(
      config({
        streamName: 'x',
        endpoint: `http://127.0.0.1:${(hole.address() as { port: number }).port}`,
        requestTimeout: '500ms',
      }),
    );
    const t0 = Date.now();
    await expect(sink.send(batch(events(2)))).rejects.toThrow(/Kinesis/);
    expect(Date.now() - t0).toBeLessThan(5_000);
    await sink.stop();
    for (const s of sockets) s.destroy();
    await new Promise((r) => hole.close(r));
  });

  it('a reset in the middle of a batch keeps what was accepted and retries only the rest', async () => {
    const stream = await createStream();
    // An HTTP proxy in front of kinesalite that cuts the connection on the second request.
    let n = 0;
    const target = new URL(endpoint);
    const proxy = createHttpServer((req, res) => {
      if (++n === 2) {
        req.socket.destroy();
        return;
      }
      const up = request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
        (r) => {
          res.writeHead(r.statusCode ?? 500, r.headers);
          r.pipe(res);
        },
      );
      req.pipe(up);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const sink = await started(
      config({ streamName: stream, endpoint: `http://127.0.0.1:${(proxy.address() as { port: number }).port}` }),
    );
    await new Promise((r) => setTimeout(r, 200)); // the start-up probe is request 1
    n = 0;
    const evs = events(700);
    const res = await sink.send(batch(evs));
    // call 1 (500 records) went through, call 2 (200 records) was cut
    expect(res.accepted).toHaveLength(500);
    expect(res.retry).toEqual(Array.from({ length: 200 }, (_, i) => 500 + i));
    expect(res.error).toMatch(/Kinesis|reach/);
    // the retry of the rest goes through
    const again = await sink.send(batch(evs.slice(500)));
    expect(again.accepted).toHaveLength(200);
    expect((await readAll(stream)).map((r) => JSON.parse(Buffer.from(r.Data!).toString()).seq)).toEqual(
      evs.map((e) => e.seq),
    );
    await sink.stop();
    proxy.closeAllConnections();
    await new Promise((r) => proxy.close(r));
  });
});

describe('kinesis uplink without credentials', () => {
  it('says no AWS credentials were found instead of a provider-chain error', async () => {
    const keys = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_EC2_METADATA_DISABLED', 'AWS_SHARED_CREDENTIALS_FILE', 'AWS_CONFIG_FILE'];
    const saved = Object.fromEntries(keys.map((k) => [k, process.env[k]]));
    for (const k of keys) delete process.env[k];
    // No instance metadata service here: do not wait for its timeout.
    Object.assign(process.env, { AWS_EC2_METADATA_DISABLED: 'true', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent', AWS_CONFIG_FILE: '/nonexistent' });
    try {
      const sink = await started(kinesisUplinkSchema.parse({ name: 'k', type: 'kinesis', streamName: 's', endpoint }));
      await expect(sink.send(batch(events(1)))).rejects.toThrow(/no AWS credentials for Kinesis/);
      await sink.stop();
    } finally {
      for (const k of keys) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
  });
});

describe('chunkCalls', () => {
  it('keeps every call within 500 records and 5 MiB', () => {
    const small = Array.from({ length: 1234 }, (_, i) => ({
      key: 'k',
      data: Buffer.alloc(10),
      indices: [i],
      id: String(i),
    }));
    expect(chunkCalls(small).map((c) => c.length)).toEqual([500, 500, 234]);
    const big = Array.from({ length: 12 }, (_, i) => ({
      key: 'k',
      data: Buffer.alloc(1000 * 1024),
      indices: [i],
      id: String(i),
    }));
    const calls = chunkCalls(big);
    expect(calls.map((c) => c.length)).toEqual([5, 5, 2]);
    for (const c of calls) expect(c.reduce((a, r) => a + r.data.length + 1, 0)).toBeLessThanOrEqual(5 * 1024 * 1024);
  });
});
