/**
 * HTTP basic auth for the dashboard and the API (config `http.auth`), meant for a listener that is
 * not on loopback. Guarantees:
 * - every route needs the credentials except `/healthz` (supervisors, load balancers) and
 *   `POST /api/events` (HTTP ingest, which checks its own per-device bearer tokens), unless the
 *   client connects from a loopback address (the local `sluice status`, an SSH tunnel);
 * - the password is checked against the scrypt hash made by `sluice passwd`, on the libuv pool;
 *   a verified `Authorization` header is remembered (as a SHA-256 digest, at most 64 of them) so
 *   scrypt runs once per browser session, not once per request;
 * - a refusal is a 401 with one sentence and a `WWW-Authenticate` challenge, counted by the caller's
 *   logger; failures are not cached, so a wrong password never locks out the right one.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { verifyPassword } from './password.js';
import { HttpError } from '../ops/http-server.js';
import { isLoopback } from './origin.js';

export interface HttpAuth {
  username: string;
  passwordHash: string;
}

/** A guard for `HttpServer.guard` that enforces `auth` as described above. */
export function basicAuthGuard(
  auth: HttpAuth,
  realm = 'sluice',
  // false: loopback clients authenticate too (a reverse proxy on the device makes every client loopback).
  loopback: { trustLoopback?: boolean } = {},
): (req: IncomingMessage, url: URL) => Promise<void> {
  const verified = new Set<string>();
  const challenge = { 'www-authenticate': `Basic realm="${realm}", charset="UTF-8"` };
  return async (req, url) => {
    // Event ingest authenticates its own clients (bearer tokens mapped to broker users).
    if (url.pathname === '/healthz' || (req.method === 'POST' && url.pathname === '/api/events')) return;
    if (loopback.trustLoopback !== false && isLoopback(req.socket.remoteAddress)) return;
    const header = req.headers.authorization ?? '';
    if (!header.startsWith('Basic ')) throw new HttpError(401, 'authentication required', challenge);
    const digest = createHash('sha256').update(header).digest('base64');
    if (verified.has(digest)) return;
    const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const user = colon < 0 ? decoded : decoded.slice(0, colon);
    const password = colon < 0 ? '' : decoded.slice(colon + 1);
    const ok = user === auth.username && (await verifyPassword(password, auth.passwordHash));
    if (!ok) throw new HttpError(401, 'wrong username or password', challenge);
    if (verified.size >= 64) verified.clear();
    verified.add(digest);
  };
}
