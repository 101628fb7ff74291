import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy } from '../../test/helpers/fault-proxy.js';
import { type SelfSigned, selfSignedCert } from '../../test/helpers/certs.js';
import { memoryRunner } from '../../test/helpers/uplink/memory-runner.js';
import { HttpSink, retryAfter } from './index.js';
import { httpUplinkSchema } from './schema.js';
import { until } from '../../test/helpers/until.js';
import { cleanupsAfterEach } from '../../test/helpers/cleanups.js';

interface Received {
  headers: IncomingMessage['headers'];
  doc: { gateway: string; batchId: string; events: { seq: number; payload: { i: number } }[] };
}

// A self-signed certificate for 127.0.0.1; the uplink trusts it through tls.ca.
let tls: SelfSigned;
beforeAll(() => {
  tls = selfSignedCert();
});
afterAll(() => tls?.cleanup());

const cleanups = cleanupsAfterEach();

/** A local HTTPS ingest endpoint; `reply` decides each response from the received batch. */
async function endpoint(
  reply: (r: Received, n: number, res: ServerResponse) => void = (_r, _n, res) => res.writeHead(202).end(),
): Promise<{ url: string; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer(tls, (req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d) => parts.push(d));
    req.on('end', () => {
      const raw = Buffer.concat(parts);
      const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
      const r = { headers: req.headers, doc: JSON.parse(body.toString()) };
      received.push(r);
      reply(r, received.length, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  cleanups.push(() => server.closeAllConnections());
  const { port } = server.address() as { port: number };
  return { url: `https://127.0.0.1:${port}/v1/batches`, received, server };
}

function setup(url: string, extra: Record<string, unknown> = {}) {
  const config = httpUplinkSchema.parse({
    name: 'ingest',
    type: 'http',
    url,
    tls: { ca: tls.certPath },
    batch: { maxEvents: 10, maxDelay: 0 },
    retry: { initialDelay: 20, maxDelay: 100 },
    timeout: '2s',
    ...extra,
  });
  const run = memoryRunner(config, (ctx) => new HttpSink(config, ctx), { stopMs: 1000 });
  cleanups.push(run.stop);
  return run;
}

const seqs = (rs: Received[]) => rs.flatMap((r) => r.doc.events.map((e) => e.seq));
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

describe('http uplink (local HTTPS endpoint)', () => {
  it('POSTs gzipped contract batches with Idempotency-Key, bearer and custom headers, over verified TLS', async () => {
    const ep = await endpoint();
    const { log, reader, runner } = setup(ep.url, {
      gzip: true,
      bearerToken: 's3cret',
      headers: { 'x-api-key': 'k1' },
    });
    log.appendN(25);
    runner.start();
    await until(() => reader.committed === 25);
    expect(seqs(ep.received)).toEqual(range(1, 25));
    const first = ep.received[0];
    expect(first.doc.gateway).toBe('gw-01');
    expect(first.doc.batchId).toBe('1-10');
    expect(first.headers['idempotency-key']).toBe('1-10');
    expect(first.headers['content-encoding']).toBe('gzip');
    expect(first.headers['content-type']).toBe('application/json');
    expect(first.headers.authorization).toBe('Bearer s3cret');
    expect(first.headers['x-api-key']).toBe('k1');
    expect(runner.status()).toMatchObject({ connected: true, deliveredEvents: 25, pendingEvents: 0 });
  });

  it('retries 503 and 429 honouring Retry-After, then delivers', async () => {
    const times: number[] = [];
    const ep = await endpoint((_r, n, res) => {
      times.push(Date.now());
      if (n === 1) res.writeHead(503, { 'retry-after': '1' }).end('maintenance');
      else if (n === 2) res.writeHead(429).end('slow down');
      else res.writeHead(200).end();
    });
    const { log, reader, runner } = setup(ep.url);
    log.appendN(5);
    runner.start();
    await until(() => reader.committed === 5);
    expect(times[1] - times[0]).toBeGreaterThanOrEqual(950);
    // the same batch, the same idempotency key, every time
    expect(ep.received.map((r) => r.headers['idempotency-key'])).toEqual(['1-5', '1-5', '1-5']);
    expect(runner.status().retried).toBe(2);
    expect(runner.status().lastError).toContain('429');
  });

  it('dead-letters only the events the endpoint refuses with a 4xx, and goes on', async () => {
    const ep = await endpoint((r, _n, res) => {
      if (r.doc.events.some((e) => e.payload.i === 13)) res.writeHead(422).end('{"error":"payload.i must not be 13"}');
      else res.writeHead(200).end();
    });
    const { log, reader, runner, dataDir } = setup(ep.url);
    log.appendN(30);
    runner.start();
    await until(() => reader.committed === 30);
    // the batch is bisected: only the poison event (seq 14, payload.i 13) is dead-lettered
    const s = runner.status();
    expect(s.deadLettered).toBe(1);
    expect(s.deliveredEvents).toBe(29);
    expect(s.lastError).toContain('422');
    const dead = readFileSync(join(dataDir, 'dead-letter', 'ingest.ndjson'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(dead.map((d) => d.event.seq)).toEqual([14]);
    expect(dead[0].reason).toContain('must not be 13');
    const ok = ep.received.filter((r) => r.doc.events.every((e) => e.payload.i !== 13));
    expect(seqs(ok).sort((a, b) => a - b)).toEqual(range(1, 30).filter((n) => n !== 14));
  });

  it('with isolateRejects: false a refused batch is dead-lettered whole', async () => {
    const ep = await endpoint((r, _n, res) => res.writeHead(r.doc.events.some((e) => e.payload.i === 3) ? 400 : 200).end());
    const { log, reader, runner } = setup(ep.url, { isolateRejects: false });
    log.appendN(20);
    runner.start();
    await until(() => reader.committed === 20);
    expect(runner.status()).toMatchObject({ deadLettered: 10, deliveredEvents: 10 });
  });

  it('retries (never dead-letters) when the credentials are refused, until they are fixed', async () => {
    let token = 'old';
    const ep = await endpoint((r, _n, res) =>
      res.writeHead(r.headers.authorization === `Bearer ${token}` ? 200 : 401).end('bad token'),
    );
    const { log, reader, runner } = setup(ep.url, { bearerToken: 'new' });
    log.appendN(5);
    runner.start();
    await until(() => runner.status().retried >= 2);
    expect(runner.status()).toMatchObject({ deadLettered: 0, deliveredEvents: 0, pendingEvents: 5 });
    expect(runner.status().lastError).toContain('answered 401: bad token');
    token = 'new'; // the endpoint now takes the uplink's token
    await until(() => reader.committed === 5);
    expect(runner.status().deadLettered).toBe(0);
  });

  it('splits a batch on 413 until the halves fit', async () => {
    const ep = await endpoint((r, _n, res) => res.writeHead(r.doc.events.length > 3 ? 413 : 200).end());
    const { log, reader, runner } = setup(ep.url);
    log.appendN(10);
    runner.start();
    await until(() => reader.committed === 10);
    const ok = ep.received.filter((r) => r.doc.events.length <= 3);
    expect(seqs(ok)).toEqual(range(1, 10));
    expect(ok.every((r) => r.headers['idempotency-key'] === r.doc.batchId)).toBe(true);
    expect(runner.status().deliveredEvents).toBe(10);
  });

  it('refuses an untrusted certificate and says so', async () => {
    const ep = await endpoint();
    const { log, runner } = setup(ep.url, { tls: undefined });
    log.appendN(3);
    runner.start();
    await until(() => runner.status().retried > 0);
    expect(runner.status().lastError).toContain("the server's certificate is not trusted (set tls.ca");
    expect(ep.received).toHaveLength(0);
    expect(runner.status().pendingEvents).toBe(3);
  });

  it('an endpoint that stops answering times out, is retried, and loses nothing', async () => {
    const ep = await endpoint();
    const port = Number(new URL(ep.url).port);
    const proxy = await startFaultProxy({ targetPort: port });
    cleanups.push(() => proxy.close());
    const { log, reader, runner } = setup(`https://127.0.0.1:${proxy.port}/v1/batches`, { timeout: '500ms' });
    runner.start();
    log.appendN(10);
    await until(() => reader.committed === 10);
    proxy.blackhole(true);
    log.appendN(10);
    await until(() => (runner.status().lastError ?? '').includes('no response within 500 ms'));
    expect(reader.committed).toBe(10);
    proxy.blackhole(false);
    await until(() => reader.committed === 20);
    expect(new Set(seqs(ep.received))).toEqual(new Set(range(1, 20)));
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(retryAfter('120')).toBe(120_000);
    expect(retryAfter(new Date(Date.now() + 5000).toUTCString())).toBeGreaterThan(3000);
    expect(retryAfter('soon')).toBeUndefined();
    expect(retryAfter(undefined)).toBeUndefined();
  });
});
