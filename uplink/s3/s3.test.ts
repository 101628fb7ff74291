import { connect, createServer as createTcpServer, type Socket } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../src/core/event.js';
import { silentLogger } from '../../src/core/log.js';
import { freePort, tempDir } from '../../test/helpers/peers.js';
import { objectKey, S3Sink, toNdjson } from './index.js';
import { type S3UplinkConfig, s3UplinkSchema } from './schema.js';
import { batchOf, storedEvents } from '../../test/helpers/uplink/stored-events.js';

// s3rver checks signatures against its one built-in key pair.
const creds = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
let server: S3rver;
let endpoint: string;
let dir: { path: string; cleanup(): void };
let reader: S3Client;

beforeAll(async () => {
  dir = tempDir('sluice-s3rver-');
  const port = await freePort();
  server = new S3rver({
    address: '127.0.0.1',
    port,
    silent: true,
    directory: dir.path,
    configureBuckets: [{ name: 'lake' }],
  });
  await server.run();
  endpoint = `http://127.0.0.1:${port}`;
  reader = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { ...creds } });
});

afterAll(async () => {
  reader?.destroy();
  await server?.close();
  dir?.cleanup();
});

const events = (n: number, from: number, ts: number, payload: (i: number) => string = (i) => `{"value":${i}}`): StoredEvent[] =>
  storedEvents(n, { from, ts: (seq) => ts + seq - from, payloadJson: payload });

const batch = batchOf;

function config(extra: Record<string, unknown> = {}): S3UplinkConfig {
  return s3UplinkSchema.parse({
    name: 's3',
    type: 's3',
    bucket: 'lake',
    endpoint,
    forcePathStyle: true,
    ...creds,
    requestTimeout: '3s',
    ...extra,
  });
}

async function started(cfg: S3UplinkConfig): Promise<S3Sink> {
  const sink = new S3Sink(cfg, { gatewayId: 'gw-t', logger: silentLogger });
  await sink.start();
  return sink;
}

async function getObject(key: string): Promise<Buffer> {
  const o = await reader.send(new GetObjectCommand({ Bucket: 'lake', Key: key }));
  return Buffer.from(await o.Body!.transformToByteArray());
}

describe('s3 uplink against s3rver', () => {
  it('writes one gzipped NDJSON object per batch at prefix/gateway/YYYY/MM/DD/HH/batchId.ndjson.gz', async () => {
    const sink = await started(config({ prefix: 'raw/' }));
    const ts = Date.UTC(2026, 10, 24, 5, 59, 59, 500);
    const evs = events(2000, 101, ts);
    const res = await sink.send(batch(evs));
    expect(res.accepted).toHaveLength(2000);
    const key = 'raw/gw-t/2026/11/24/05/101-2100.ndjson.gz';
    const lines = gunzipSync(await getObject(key))
      .toString()
      .trimEnd()
      .split('\n');
    expect(lines.map((l) => JSON.parse(l).seq)).toEqual(evs.map((e) => e.seq));
    expect(lines[0]).toBe(evs[0].json);
    expect(sink.health()).toEqual({ connected: true, lastError: undefined });
    // the next hour's batch lands in the next partition
    await sink.send(batch(events(10, 2101, Date.UTC(2026, 10, 24, 6, 0, 0))));
    const listed = await reader.send(new ListObjectsV2Command({ Bucket: 'lake', Prefix: 'raw/gw-t/2026/11/24/' }));
    expect(listed.Contents?.map((c) => c.Key).sort()).toEqual([key, 'raw/gw-t/2026/11/24/06/2101-2110.ndjson.gz']);
    await sink.stop();
  });

  it('keeps NDJSON one event per line when a stored payload spans lines, and writes .ndjson without gzip', async () => {
    const sink = await started(config({ gzip: false }));
    const evs = events(3, 1, Date.UTC(2026, 0, 2, 3), (i) => (i === 2 ? '{\n  "value": 2\n}' : String(i)));
    await sink.send(batch(evs));
    const text = (await getObject('sluice/gw-t/2026/01/02/03/1-3.ndjson')).toString();
    const lines = text.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(JSON.parse(lines[1]).payload).toEqual({ value: 2 });
    await sink.stop();
  });

  it('names an unknown bucket', async () => {
    const sink = await started(config({ bucket: 'no-such-bucket' }));
    await expect(sink.send(batch(events(1, 1, 0)))).rejects.toThrow('S3 bucket "no-such-bucket" does not exist');
    expect(sink.health()).toMatchObject({ connected: false, lastError: expect.stringMatching(/does not exist/) });
    await sink.stop();
  });

  it('says the credentials were refused', async () => {
    const sink = await started(config({ accessKeyId: 'NOT-A-KEY', secretAccessKey: 'wrong' }));
    await expect(sink.send(batch(events(1, 1, 0)))).rejects.toThrow(/S3 refused the credentials for bucket "lake"/);
    await sink.stop();
  });

  it('gives up on a peer that never answers within requestTimeout', async () => {
    const sockets: Socket[] = [];
    const hole = createTcpServer((s) => sockets.push(s));
    await new Promise<void>((r) => hole.listen(0, '127.0.0.1', r));
    const sink = await started(
      config({ endpoint: `http://127.0.0.1:${(hole.address() as { port: number }).port}`, requestTimeout: '500ms' }),
    );
    await expect(sink.send(batch(events(2, 1, 0)))).rejects.toThrow(/S3/);
    await sink.stop();
    for (const s of sockets) s.destroy();
    await new Promise((r) => hole.close(r));
  });
});

describe('s3 uplink with a reset mid-upload', () => {
  it('leaves no object behind, and the retry writes it whole', async () => {
    // A TCP proxy in front of s3rver that resets the connection after 20 kB of the upload.
    let cutAt = 20_000;
    const sockets = new Set<Socket>();
    const proxy = createTcpServer((c) => {
      const u = connect(Number(new URL(endpoint).port), '127.0.0.1');
      sockets.add(c).add(u);
      let seen = 0;
      c.on('data', (d) => {
        seen += d.length;
        if (seen > cutAt) {
          c.resetAndDestroy();
          u.destroy();
        } else u.write(d);
      });
      u.on('data', (d) => c.write(d));
      const end = () => {
        c.destroy();
        u.destroy();
      };
      c.on('error', end).on('close', end);
      u.on('error', end).on('close', end);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const sink = await started(config({ endpoint: `http://127.0.0.1:${(proxy.address() as { port: number }).port}`, gzip: false, prefix: 'reset' }));
    const evs = events(2000, 1, Date.UTC(2026, 1, 1, 1));
    await expect(sink.send(batch(evs))).rejects.toThrow(/S3|reach/);
    const key = 'reset/gw-t/2026/02/01/01/1-2000.ndjson';
    await expect(getObject(key)).rejects.toThrow();
    cutAt = Number.POSITIVE_INFINITY;
    expect((await sink.send(batch(evs))).accepted).toHaveLength(2000);
    expect((await getObject(key)).toString().trimEnd().split('\n').map((l) => JSON.parse(l).seq)).toEqual(evs.map((e) => e.seq));
    await sink.stop();
    for (const s of sockets) s.destroy();
    await new Promise((r) => proxy.close(r));
  });
});

describe('objectKey and toNdjson', () => {
  it('uses the UTC hour of the first event and no leading slash without a prefix', () => {
    const b = batch(events(2, 7, Date.UTC(1970, 0, 1, 0, 0, 1)));
    expect(objectKey('', b)).toBe('gw-t/1970/01/01/00/7-8.ndjson.gz');
    expect(objectKey('a/b', b, false)).toBe('a/b/gw-t/1970/01/01/00/7-8.ndjson');
    expect(toNdjson(b.events).split('\n')).toHaveLength(3);
  });
});
