/**
 * HTTP basic auth for the dashboard and the API (config `http.auth`), meant for a listener that is
 * not on loopback. Guarantees:
 * - every route needs the credentials except `/healthz` (supervisors, load balancers) and
 *   `POST /api/events` (HTTP ingest, which checks its own per-device bearer tokens), unless the
 *   client connects from a loopback address (the local `sluice status`, an SSH tunnel) and
 *   `trustLoopback` is not false (a reverse proxy on the device makes every client loopback);
 * - the password is checked by the gateway's shared `Logins` (logins.ts), with the broker's and
 *   ingest's: failures per client address and per username are limited (429 with Retry-After; an
 *   attempt counts before its check, so parallel guesses do not all get through), scrypt runs on
 *   its own thread (503 past its queue), and a verified password is remembered, so scrypt runs once
 *   per browser session, not once per request;
 * - a refusal is a 401 (wrong credentials) with one sentence and a `WWW-Authenticate` challenge,
 *   counted by reason (`auth_failed`, `auth_rate_limited`, `auth_busy`) and logged with the client
 *   address; failures are not cached, so a wrong password never locks out the right one.
 */
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import { HttpError } from '../core/http-server.js';
import { Logins } from './logins.js';
import { isLoopback } from './origin.js';

export interface HttpAuth {
  username: string;
  passwordHash: string;
}

export interface BasicAuthOptions {
  realm?: string;
  /** false: loopback clients authenticate too. */
  trustLoopback?: boolean;
  /** The gateway's shared login checks; one of its own (10 failures a minute) without. */
  logins?: Logins;
  logger?: Pick<Logger, 'warn'>;
  countRejected?(reason: string): void;
}

/** A guard for `HttpServer.guard` that enforces `auth` as described above. */
export function basicAuthGuard(auth: HttpAuth, opts: BasicAuthOptions = {}): (req: IncomingMessage, url: URL) => Promise<void> {
  const logins = opts.logins ?? new Logins({ perAddress: 10, perUser: 30 });
  const challenge = { 'www-authenticate': `Basic realm="${opts.realm ?? 'sluice'}", charset="UTF-8"` };
  return async (req, url) => {
    // Event ingest authenticates its own clients (bearer tokens mapped to broker users).
    if (url.pathname === '/healthz' || (req.method === 'POST' && url.pathname === '/api/events')) return;
    const address = req.socket.remoteAddress;
    if (opts.trustLoopback !== false && isLoopback(address)) return;
    const header = req.headers.authorization ?? '';
    if (!header.startsWith('Basic ')) throw new HttpError(401, 'authentication required', challenge);
    const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const user = colon < 0 ? decoded : decoded.slice(0, colon);
    const password = colon < 0 ? '' : decoded.slice(colon + 1);
    const result = await logins.check({
      address: address ?? 'unknown',
      username: user,
      secret: password,
      hashes: user === auth.username ? [auth.passwordHash] : [],
    });
    if (result.ok) return;
    opts.countRejected?.(result.reason);
    opts.logger?.warn({ address, username: user, reason: result.reason }, 'HTTP login refused');
    if (result.reason === 'auth_rate_limited') {
      throw new HttpError(429, 'too many failed logins; wait a minute', { 'retry-after': '60' });
    }
    if (result.reason === 'auth_busy') throw new HttpError(503, 'too many logins are being checked; retry shortly', { 'retry-after': '1' });
    throw new HttpError(401, 'wrong username or password', challenge);
  };
}
