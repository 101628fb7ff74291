import type { IncomingMessage } from 'node:http';
import { request } from 'node:http';
import { networkInterfaces } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { hashPassword } from '../../auth/password.js';
import { silentLogger } from '../../core/log.js';
import { HttpError, HttpServer } from '../../core/http-server.js';
import { basicAuthGuard } from '../../auth/http-basic.js';
import { isLoopback } from '../../auth/origin.js';
import { LatestReadings, registerDashboard } from './index.js';

function get(
  port: number,
  path: string,
  headers: Record<string, string> = {},
  host = '127.0.0.1',
): Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

function post(port: number, path: string, host: string): Promise<{ status: number }> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, method: 'POST', headers: { authorization: 'Bearer device-token' } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
    });
    req.on('error', reject);
    req.end('[]');
  });
}

/** Opens the SSE stream and collects `count` status frames. */
function frames(
  port: number,
  count: number,
): Promise<{ res: IncomingMessage; frames: { now: number; status: { n: number }; readings: unknown[] }[] }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/api/stream' }, (res) => {
      let text = '';
      const got: { now: number; status: { n: number }; readings: unknown[] }[] = [];
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        text += d;
        let i = text.indexOf('\n\n');
        while (i >= 0) {
          const block = text.slice(0, i);
          text = text.slice(i + 2);
          if (block.startsWith('event: status\n')) got.push(JSON.parse(block.slice(block.indexOf('data: ') + 6)));
          if (got.length === count) {
            resolve({ res, frames: got });
            req.destroy();
          }
          i = text.indexOf('\n\n');
        }
      });
    });
    req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(err)));
    req.end();
  });
}

const servers: HttpServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function serve(opts: Parameters<typeof registerDashboard>[2] = {}) {
  const http = new HttpServer(silentLogger);
  servers.push(http);
  let n = 0;
  const readings = new LatestReadings();
  const dash = registerDashboard(
    http,
    { status: () => ({ n: ++n }), recentReadings: () => readings.recentReadings() },
    { intervalMs: 50, ...opts },
  );
  await http.listen('127.0.0.1', 0);
  return { http, dash, port: http.address!.port, readings };
}

describe('dashboard page', () => {
  it('is one light self-contained document with no external URL', async () => {
    const { port } = await serve();
    const plain = await get(port, '/');
    expect(plain.status).toBe(200);
    expect(plain.headers['content-type']).toMatch(/^text\/html/);
    const html = plain.body.toString('utf8');
    expect(plain.body.length).toBeLessThan(200 * 1024);
    expect(html).toContain('<!doctype html>');
    expect(html).toContain("new EventSource('api/stream')");
    // No absolute URL (the SVG namespace is a name, never fetched); the only files the page loads
    // are the gateway's own, by relative path (works behind a path prefix).
    const urls = html.match(/(https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}[^\s"')]*/gi) ?? [];
    expect(urls.filter((u) => !u.startsWith('http://www.w3.org/2000/svg'))).toEqual([]);
    const loads = [...html.matchAll(/<(?:link|img|iframe|script)\b[^>]*\b(?:src|href)="([^"]*)"/gi)].map((m) => m[1]);
    expect(loads.sort()).toEqual(['assets/uplot.css', 'assets/uplot.js', 'data:,']);
    for (const asset of ['/assets/uplot.js', '/assets/uplot.css']) {
      const a = await get(port, asset, { 'accept-encoding': 'gzip' });
      expect(a.status).toBe(200);
      expect(a.headers['content-encoding']).toBe('gzip');
      expect(gunzipSync(a.body).length).toBeGreaterThan(1000);
    }
    // The page and its chart library stay small over the wire (a phone on a site's Wi-Fi).
    const uplot = await get(port, '/assets/uplot.js', { 'accept-encoding': 'gzip' });
    const page = await get(port, '/', { 'accept-encoding': 'gzip' });
    expect(uplot.body.length + page.body.length).toBeLessThan(48 * 1024);
    // The inline script must be valid JavaScript (a syntax error would leave the page dead).
    const script = html.slice(html.indexOf('<script>') + 8, html.indexOf('</script>'));
    expect(() => new Function(script)).not.toThrow();

    const gz = await get(port, '/', { 'accept-encoding': 'gzip, deflate' });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(gz.body).toString('utf8')).toBe(html);
    expect(gz.body.length).toBeLessThan(plain.body.length / 2);
  });
});

describe('dashboard stream', () => {
  it('pushes the status and the latest readings every tick, one timer for all viewers', async () => {
    const { dash, port, readings } = await serve();
    readings.observe([
      { topic: 'a/temp', ts: 1, payload: 20.5, kind: 'reading' },
      { topic: 'b/hum', ts: 2, payload: { value: 40, unit: '%' }, kind: 'reading' },
      { topic: 'c/text', ts: 3, payload: 'on fire', kind: 'reading' },
    ]);
    const [one, two] = await Promise.all([frames(port, 3), frames(port, 3)]);
    for (const got of [one, two]) {
      expect(got.res.headers['content-type']).toBe('text/event-stream');
      expect(got.frames.map((f) => f.status.n)).toHaveLength(3);
      expect(got.frames[0].readings).toEqual([
        { topic: 'b/hum', ts: 2, value: 40, unit: '%' },
        { topic: 'a/temp', ts: 1, value: 20.5 },
      ]);
      expect(typeof got.frames[0].now).toBe('number');
    }
    // Each status() call is shared: the two viewers see the same numbers from the common ticks on.
    const ticksOne = one.frames.slice(1).map((f) => f.status.n);
    const ticksTwo = two.frames.slice(1).map((f) => f.status.n);
    expect(ticksOne.filter((n) => ticksTwo.includes(n)).length).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 100));
    expect(dash.clients).toBe(0);
  });

  it('refuses viewers beyond the limit with a 503 and one sentence', async () => {
    const { dash, port } = await serve({ maxClients: 1 });
    const first = frames(port, 1);
    await first;
    const held = frames(port, 50);
    await new Promise((r) => setTimeout(r, 100));
    expect(dash.clients).toBe(1);
    const refused = await get(port, '/api/stream');
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body.toString()).error).toMatch(/too many dashboard viewers/);
    dash.close();
    expect(dash.clients).toBe(0);
    void held.catch(() => {});
  });

  it('keeps streaming when status() throws once', async () => {
    const http = new HttpServer(silentLogger);
    servers.push(http);
    let n = 0;
    registerDashboard(
      http,
      {
        status: () => {
          n++;
          if (n === 2) throw new Error('boom');
          return { n };
        },
      },
      { intervalMs: 30 },
    );
    await http.listen('127.0.0.1', 0);
    const got = await frames(http.address!.port, 3);
    expect(got.frames.map((f) => f.status.n)).toEqual([1, 3, 4]);
  });
});

describe('basic auth', () => {
  const fakeReq = (remoteAddress: string, authorization?: string) =>
    ({ socket: { remoteAddress }, headers: authorization ? { authorization } : {} }) as unknown as IncomingMessage;
  const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

  it('asks remote clients for the password, exempts loopback and /healthz', async () => {
    const guard = basicAuthGuard({ username: 'tech', passwordHash: await hashPassword('s3cret') });
    const root = new URL('http://x/');
    await expect(guard(fakeReq('10.1.2.3'), root)).rejects.toMatchObject({ status: 401 });
    await expect(guard(fakeReq('10.1.2.3', basic('tech', 'wrong')), root)).rejects.toBeInstanceOf(HttpError);
    await expect(guard(fakeReq('10.1.2.3', basic('other', 's3cret')), root)).rejects.toMatchObject({ status: 401 });
    await expect(guard(fakeReq('10.1.2.3', basic('tech', 's3cret')), root)).resolves.toBeUndefined();
    // Remembered: the second check does not run scrypt again (and still passes).
    await expect(guard(fakeReq('10.1.2.3', basic('tech', 's3cret')), root)).resolves.toBeUndefined();
    await expect(guard(fakeReq('10.1.2.3'), new URL('http://x/healthz'))).resolves.toBeUndefined();
    await expect(guard(fakeReq('127.0.0.1'), root)).resolves.toBeUndefined();
    await expect(guard(fakeReq('::ffff:127.0.0.1'), root)).resolves.toBeUndefined();
    try {
      await guard(fakeReq('192.168.1.9'), root);
    } catch (err) {
      expect((err as HttpError).headers['www-authenticate']).toMatch(/^Basic realm=/);
    }
    expect(isLoopback('::1')).toBe(true);
    expect(isLoopback('10.0.0.1')).toBe(false);
  });

  // A real listener on this machine's LAN address: the client is not on loopback.
  const lan = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
  it.skipIf(!lan)('guards a LAN listener end to end: 401 with a challenge, 200 with the password', async () => {
    const http = new HttpServer(silentLogger);
    servers.push(http);
    http.route('GET', '/healthz', (_req, res) => {
      res.end('{"ok":true}');
    });
    registerDashboard(http, { status: () => ({ gateway: { id: 'gw-lan' } }) }, { auth: { username: 'tech', passwordHash: await hashPassword('pw') } });
    await http.listen(lan!, 0);
    const port = http.address!.port;
    const denied = await get(port, '/', {}, lan);
    expect(denied.status).toBe(401);
    expect(denied.headers['www-authenticate']).toMatch(/^Basic realm="sluice"/);
    expect((await get(port, '/api/stream', { authorization: basic('tech', 'nope') }, lan)).status).toBe(401);
    expect((await get(port, '/healthz', {}, lan)).status).toBe(200);
    // HTTP ingest authenticates devices with its own bearer tokens: the guard lets it through
    // (no such route here, hence 404 rather than the guard's 401).
    expect((await post(port, '/api/events', lan!)).status).toBe(404);
    const page = await get(port, '/', { authorization: basic('tech', 'pw') }, lan);
    expect(page.status).toBe(200);
    expect(page.body.toString()).toContain('<title>Sluice</title>');
  });

  it('is installed on the HTTP server when auth is configured', async () => {
    const { http } = await serve({ auth: { username: 'tech', passwordHash: await hashPassword('pw') } });
    expect(http.guard).toBeTypeOf('function');
  });
});

describe('LatestReadings', () => {
  it('keeps one numeric reading per topic and forgets the stalest beyond the bound', () => {
    const r = new LatestReadings(3);
    for (let i = 0; i < 10; i++) r.observe([{ topic: `t/${i}`, ts: i, payload: { value: i } }]);
    r.observe([
      { topic: 't/9', ts: 11, payload: '7.5' },
      { topic: 'x', ts: 12, payload: 1, kind: 'anomaly' },
    ]);
    expect(r.recentReadings()).toEqual([
      { topic: 't/9', ts: 11, value: 7.5 },
      { topic: 't/8', ts: 8, value: 8 },
      { topic: 't/7', ts: 7, value: 7 },
    ]);
  });

  it('treats topics named after Object.prototype members as topics, with their units', () => {
    const r = new LatestReadings();
    const names = ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf'];
    r.observe(names.map((topic, i) => ({ topic, ts: i, payload: { value: i, unit: 'bar' } })), 100);
    expect(r.recentReadings().map((x) => [x.topic, x.value, x.unit])).toEqual(names.map((t, i) => [t, i, 'bar']).reverse());
    expect(r.unit('constructor')).toBe('bar');
    expect(r.unit('hasOwnProperty')).toBe('bar');
    expect(r.unit('nothing')).toBeUndefined();
    expect(r.topicRates(10, 1000).topics.map((t) => t.topic).sort()).toEqual([...names].sort());
  });

  it('measures per-topic rates with bounded cardinality', () => {
    const r = new LatestReadings(200, 5);
    r.topicRates(3, 0);
    const events = [];
    for (let i = 0; i < 20; i++) for (let k = 0; k <= i; k++) events.push({ topic: `t/${i}`, payload: 1 });
    r.observe(events, 0);
    const { topics, counted } = r.topicRates(3, 2000);
    // Only the first 5 topics were counted one by one, the rest under one name; 5 kept in all.
    expect(counted).toBe(5);
    expect(topics[0]).toMatchObject({ topic: '(other topics)', total: events.length - 15, rate: (events.length - 15) / 2 });
    expect(topics.slice(1).map((t) => t.topic)).toEqual(['t/4', 't/3']);
    // Silent topics fade out.
    for (let s = 3; s < 20; s++) r.topicRates(3, s * 1000);
    expect(r.topicRates(3, 21_000).counted).toBe(0);
  });
});
