import { request } from 'node:http';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRingLog } from '../../buffer/index.js';
import type { RingLog } from '../../buffer/types.js';
import { hashPassword } from '../../src/auth/password.js';
import { userSchema } from '../../src/broker/schema.js';
import { bufferSchema } from '../../src/config/schema.js';
import { silentLogger } from '../../src/core/log.js';
import { HttpServer } from '../../src/core/http-server.js';
import { tempDir } from '../../test/helpers/peers.js';
import { registerHttpIngest } from './index.js';

function post(
  port: number,
  body: string | Buffer,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown>; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/api/events',
        headers: { 'content-type': 'application/json', ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: JSON.parse(Buffer.concat(chunks).toString() || '{}'),
            headers: res.headers,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('POST /api/events through a real HttpServer into a real ring log', () => {
  const dir = tempDir('sluice-http-ingest-');
  let log: RingLog;
  const http = new HttpServer(silentLogger);
  let port = 0;
  const rejected: Record<string, number> = {};
  let failNext: Error | undefined;
  let appendsStarted = 0;

  beforeAll(async () => {
    log = await openRingLog({
      dir: dir.path,
      gatewayId: 'gw-http',
      config: bufferSchema.parse({}),
      logger: silentLogger,
    });
    const users = [
      userSchema.parse({
        username: 'pump',
        passwordHash: await hashPassword('x'),
        tokenHash: await hashPassword('pump-token'),
        publish: ['site/pump/#'],
      }),
      userSchema.parse({ username: 'ro', passwordHash: await hashPassword('y'), publish: ['#'] }), // no token: cannot use HTTP
    ];
    registerHttpIngest(http, {
      users,
      maxPayloadBytes: 4096,
      anonymous: false,
      countRejected: (reason, n = 1) => {
        rejected[reason] = (rejected[reason] ?? 0) + n;
      },
      async ingest(events) {
        appendsStarted++;
        if (failNext) {
          const err = failNext;
          failNext = undefined;
          throw err;
        }
        return log.append(events);
      },
    });
    await http.listen('127.0.0.1', 0);
    port = http.address?.port ?? 0;
  });
  afterAll(async () => {
    await http.close();
    await log?.close();
    dir.cleanup();
  });

  const auth = { authorization: 'Bearer pump-token' };

  async function stored(): Promise<Record<string, unknown>[]> {
    const reader = log.reader('test-check');
    const out: Record<string, unknown>[] = [];
    for (;;) {
      const batch = await reader.next(1000, 1 << 20);
      if (batch.length === 0) break;
      for (const e of batch) out.push(JSON.parse(e.json));
      await reader.commit(batch[batch.length - 1].seq);
    }
    return out;
  }

  it('accepts one event, an array and NDJSON, answering only once they are durable', async () => {
    const one = await post(
      port,
      JSON.stringify({
        topic: 'site/pump/flow',
        payload: { value: 3.2, unit: 'm3/h' },
        deviceTs: '2025-01-01T00:00:00Z',
      }),
      auth,
    );
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ accepted: 1 });
    const arr = await post(
      port,
      JSON.stringify([
        { topic: 'site/pump/a', payload: 1 },
        { topic: 'site/pump/b', payload: 'on', deviceTs: 1700000000000 },
      ]),
      auth,
    );
    expect(arr.body).toMatchObject({ accepted: 2 });
    expect(arr.body.lastSeq).toBe((arr.body.firstSeq as number) + 1);
    const nd = await post(port, '{"topic":"site/pump/c","payload":true}\n\n{"topic":"site/pump/d","payload":null}\n', {
      ...auth,
      'content-type': 'application/x-ndjson',
    });
    expect(nd.body).toMatchObject({ accepted: 2 });
    const events = await stored();
    expect(events.map((e) => [e.topic, e.payload, e.source, e.deviceTs])).toEqual([
      ['site/pump/flow', { value: 3.2, unit: 'm3/h' }, 'http', Date.UTC(2025, 0, 1)],
      ['site/pump/a', 1, 'http', undefined],
      ['site/pump/b', 'on', 'http', 1700000000000],
      ['site/pump/c', true, 'http', undefined],
      ['site/pump/d', null, 'http', undefined],
    ]);
    expect((events[0].seq as number) > 0).toBe(true);
  });

  it('refuses without a valid token (401), outside the ACL (403), over the limit (413), all or nothing', async () => {
    const before = appendsStarted;
    const none = await post(port, JSON.stringify({ topic: 'site/pump/x', payload: 1 }));
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(/Bearer/);
    expect((await post(port, '{}', { authorization: 'Bearer nope' })).status).toBe(401);
    expect((await post(port, '{}', { authorization: 'Basic cHVtcDp4' })).status).toBe(401);
    const acl = await post(
      port,
      JSON.stringify([
        { topic: 'site/pump/ok', payload: 1 },
        { topic: 'site/boiler/t', payload: 2 },
      ]),
      auth,
    );
    expect(acl.status).toBe(403);
    expect(acl.body.error).toBe('item 1: user "pump" may not publish to "site/boiler/t"');
    const big = await post(port, JSON.stringify({ topic: 'site/pump/big', payload: 'x'.repeat(5000) }), auth);
    expect(big.status).toBe(413);
    expect(appendsStarted).toBe(before);
    expect(await stored()).toEqual([]);
    expect(rejected).toMatchObject({ auth_anonymous: 1, auth_failed: 2, acl_publish: 2, oversize: 1 });
  });

  it('names the index or line of a malformed item (400)', async () => {
    const cases: [string, string, string][] = [
      [
        '[{"topic":"site/pump/a","payload":1},{"payload":2}]',
        'application/json',
        'item 1: "topic" must be a non-empty string',
      ],
      ['{"topic":"site/pump/a","payload":1}\n{"topic":"site/pump/b",', 'application/x-ndjson', 'line 2: not JSON'],
      [
        '{"topic":"site/pump/a","payload":1}\n{"topic":"site/pump/+","payload":1}',
        '',
        'line 2: "site/pump/+" is not a valid topic',
      ],
      ['{"topic":"site/pump/a"}', 'application/json', 'body: "payload" is missing'],
      ['{"topic":"site/pump/a","payload":1,"qos":1}', 'application/json', 'body: unknown key "qos"'],
      ['[1]', 'application/json', 'item 0: not an object'],
      ['{"topic":"site/pump/a","payload":1,"deviceTs":"soon"}', 'application/json', 'body: "deviceTs" must be'],
      ['', 'application/json', 'empty body'],
    ];
    for (const [body, type, message] of cases) {
      const r = await post(port, body, { ...auth, 'content-type': type });
      expect(r.status, body).toBe(400);
      expect(r.body.error as string).toContain(message);
    }
    expect(await stored()).toEqual([]);
  });

  it('accepts a gzip body, and refuses one that inflates past the limit (413) or is not gzip (400)', async () => {
    const lines = '{"topic":"site/pump/z1","payload":1}\n{"topic":"site/pump/z2","payload":2}\n';
    const ok = await post(port, gzipSync(lines), { ...auth, 'content-type': 'application/x-ndjson', 'content-encoding': 'gzip' });
    expect(ok.status).toBe(200);
    expect(ok.body.accepted).toBe(2);
    expect((await stored()).map((e) => e.topic)).toEqual(['site/pump/z1', 'site/pump/z2']);
    // 100 KB of zeros gzip to ~100 bytes: within the 4096-byte body limit, but not once inflated.
    const bomb = gzipSync(JSON.stringify({ topic: 'site/pump/b', payload: '0'.repeat(100_000) }));
    expect(bomb.length).toBeLessThan(4096);
    expect((await post(port, bomb, { ...auth, 'content-encoding': 'gzip' })).status).toBe(413);
    expect((await post(port, 'not gzip', { ...auth, 'content-encoding': 'gzip' })).status).toBe(400);
    expect((await post(port, 'x', { ...auth, 'content-encoding': 'br' })).status).toBe(415);
    expect(await stored()).toEqual([]);
  });

  it('answers 503 with Retry-After when the append fails, and stores nothing', async () => {
    failNext = Object.assign(new Error('full'), { code: 'BUFFER_FULL' });
    const r = await post(port, JSON.stringify({ topic: 'site/pump/a', payload: 1 }), auth);
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toBe('1');
    expect(rejected.buffer_full).toBe(1);
    expect(await stored()).toEqual([]);
  });
});

describe('POST /api/events token brute force', () => {
  it('refuses an address with 429 after too many unknown tokens in a minute', async () => {
    const http = new HttpServer(silentLogger);
    const rejected: string[] = [];
    registerHttpIngest(http, {
      users: [userSchema.parse({ username: 'u', passwordHash: await hashPassword('x'), tokenHash: await hashPassword('good'), publish: ['#'] })],
      maxPayloadBytes: 1024,
      anonymous: false,
      maxAuthFailuresPerMinute: 2,
      countRejected: (reason) => void rejected.push(reason),
      ingest: async () => ({ firstSeq: 1, lastSeq: 1 }),
    });
    await http.listen('127.0.0.1', 0);
    try {
      const port = http.address?.port ?? 0;
      const body = JSON.stringify({ topic: 'a', payload: 1 });
      const statuses: number[] = [];
      for (const token of ['bad1', 'bad2', 'bad3', 'good']) statuses.push((await post(port, body, { authorization: `Bearer ${token}` })).status);
      expect(statuses).toEqual([401, 401, 429, 429]);
      expect(rejected).toEqual(['auth_failed', 'auth_failed', 'auth_rate_limited', 'auth_rate_limited']);
    } finally {
      await http.close();
    }
  });
});
