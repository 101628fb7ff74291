import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../core/log.js';
import { HttpServer, sendJson } from '../core/http-server.js';
import { hashPassword } from './password.js';
import { principalOf, requestGuard } from './request-guard.js';

function call(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('requestGuard', () => {
  const servers: HttpServer[] = [];
  const refused: string[] = [];
  let open: number; // loopback listener, trusted loopback
  let strict: number; // trustLoopback: false with basic auth

  const serve = async (guard: HttpServer['guard']) => {
    const http = new HttpServer(silentLogger);
    http.guard = guard;
    http.route('GET', '/api/status', (req, res) => sendJson(res, 200, { who: principalOf(req) }));
    http.route('POST', '/api/thing', (req, res) => sendJson(res, 200, { who: principalOf(req) }));
    http.route('POST', '/api/events', (req, res) => sendJson(res, 200, { who: principalOf(req) }), { anyBody: true });
    await http.listen('127.0.0.1', 0);
    servers.push(http);
    return http.address!.port;
  };

  beforeAll(async () => {
    open = await serve(requestGuard({ listenerHost: '127.0.0.1', countRefused: (r) => refused.push(r) }));
    strict = await serve(
      requestGuard({
        listenerHost: '127.0.0.1',
        trustLoopback: false,
        auth: { username: 'u', passwordHash: await hashPassword('pw') },
      }),
    );
  });
  afterAll(async () => {
    for (const s of servers) await s.close();
  });

  it('lets the gateway’s own names and same-origin pages through as trusted loopback', async () => {
    for (const host of [`127.0.0.1:${open}`, `localhost:${open}`, `[::1]:${open}`, '10.1.2.3'])
      expect((await call(open, 'GET', '/api/status', { host })).body).toBe('{"who":"loopback"}');
    const same = await call(open, 'POST', '/api/thing', {
      origin: `http://127.0.0.1:${open}`,
      'sec-fetch-site': 'same-origin',
      'content-type': 'application/json; charset=utf-8',
    }, '{}');
    expect(same.status).toBe(200);
  });

  it('refuses foreign Host names, cross-site requests and non-JSON bodies, counting each', async () => {
    expect((await call(open, 'GET', '/api/status', { host: `rebind.example:${open}` })).status).toBe(403);
    expect((await call(open, 'GET', '/api/status', { host: `127.0.0.1.evil.example:${open}` })).status).toBe(403);
    expect((await call(open, 'GET', '/api/status', { 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect((await call(open, 'GET', '/api/status', { 'sec-fetch-site': 'same-site' })).status).toBe(403);
    const json = { 'content-type': 'application/json' };
    expect((await call(open, 'POST', '/api/thing', { ...json, origin: 'http://127.0.0.1.evil.example' }, '{}')).status).toBe(403);
    expect((await call(open, 'POST', '/api/thing', { ...json, origin: 'null' }, '{}')).status).toBe(403);
    expect((await call(open, 'POST', '/api/thing', { 'content-type': 'text/plain' }, '{}')).status).toBe(415);
    expect((await call(open, 'POST', '/api/thing', {}, '{}')).status).toBe(415);
    expect(refused).toEqual(['host', 'host', 'cross_site', 'cross_site', 'cross_site', 'cross_site', 'content_type', 'content_type']);
    // Ingest takes any body type, but not from another site.
    expect((await call(open, 'POST', '/api/events', { 'content-type': 'text/plain' }, 'x')).body).toBe('{"who":"device"}');
    expect((await call(open, 'POST', '/api/events', { origin: 'http://evil.example' }, 'x')).status).toBe(403);
  });

  it('with trustLoopback: false asks loopback clients for the password', async () => {
    expect((await call(strict, 'GET', '/api/status')).status).toBe(401);
    const auth = { authorization: `Basic ${Buffer.from('u:pw').toString('base64')}` };
    expect((await call(strict, 'GET', '/api/status', auth)).body).toBe('{"who":"user"}');
  });
});
