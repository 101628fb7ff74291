/**
 * The HTTP listener's one guard (`HttpServer.guard`): who may make a request, and from which page.
 * Every route passes through it, in this order:
 *
 * 1. **Host** (against DNS rebinding): when the listener is on loopback, or `http.allowedHosts` is
 *    set, the `Host` header must name an IP literal, a loopback name, or an allowed host; else 403.
 *    A rebinding page reaches the gateway under its own DNS name, which is refused here.
 * 2. **Cross-site** (against CSRF): a browser request from a page of another origin is refused
 *    (403) on every state-changing method, and on every `/api/` and `/metrics` read (a long poll
 *    hands out batches, so even a GET changes state). Browsers say where a request comes from in
 *    `Origin` and `Sec-Fetch-Site`; a client without them (curl, a device, a historian) is not a
 *    page. A link to the dashboard page (`/`) from elsewhere still opens it.
 * 3. **Body type**: a POST/PUT/PATCH must be `application/json` (415 otherwise), except routes that
 *    declare `anyBody` (HTTP ingest, whose devices send NDJSON or gzip and authenticate with bearer
 *    tokens). Forms and `text/plain` are what a foreign page can send without a CORS preflight.
 * 4. **Authentication**: `/healthz` and `POST /api/events` (own bearer tokens) are open; otherwise a
 *    loopback peer is trusted unless `trustLoopback` is false, then `http.auth` (basic) applies; with
 *    no `auth` only `allowAnonymous` (or a loopback listener) lets a request through.
 *
 * The principal it settled on (`user`, `loopback`, `anonymous`, `device`) is kept per request for
 * routes that decide more (creating a local consumer needs `user` or `loopback`).
 */
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { HttpError, type RequestGuard, type RouteOptions } from '../core/http-server.js';
import type { Logger } from 'pino';
import { basicAuthGuard, type HttpAuth } from './http-basic.js';
import type { Logins } from './logins.js';
import { isLoopback } from './origin.js';

export type Principal = 'user' | 'loopback' | 'anonymous' | 'device';

export interface RequestGuardOptions {
  /** The address the listener is bound to (`http.host`). */
  listenerHost: string;
  auth?: HttpAuth;
  allowAnonymous?: boolean;
  trustLoopback?: boolean;
  allowedHosts?: readonly string[];
  /** Counts a refusal by reason (`host`, `cross_site`, `content_type`, `auth`). */
  countRefused?(reason: 'host' | 'cross_site' | 'content_type' | 'auth'): void;  /** The gateway's shared login checks for `auth` (limits, scrypt thread, cache), and where refused logins are counted and logged. */
  logins?: Logins;
  logger?: Pick<Logger, 'warn'>;
  countLoginRefused?(reason: string): void;
}

const principals = new WeakMap<IncomingMessage, Principal>();
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Who the guard let through (undefined when no guard ran: a listener without one, in tests). */
export function principalOf(req: IncomingMessage): Principal | undefined {
  return principals.get(req);
}

export function requestGuard(opts: RequestGuardOptions): RequestGuard {
  const trustLoopback = opts.trustLoopback !== false;
  const loopbackListener = isLoopback(opts.listenerHost);
  const checkHost = loopbackListener || opts.allowedHosts !== undefined;
  const allowed = (opts.allowedHosts ?? []).map((h) => h.toLowerCase().replace(/\.$/, ''));
  const basic = opts.auth
    ? basicAuthGuard(opts.auth, { trustLoopback, logins: opts.logins, logger: opts.logger, countRejected: opts.countLoginRefused })
    : undefined;
  const refuse = (reason: Parameters<NonNullable<RequestGuardOptions['countRefused']>>[0], status: number, text: string) => {
    opts.countRefused?.(reason);
    return new HttpError(status, text);
  };

  const hostAllowed = (host: string): boolean => {
    if (isIP(host) || isLoopback(host)) return true;
    return allowed.some((a) => (a.startsWith('.') ? host === a.slice(1) || host.endsWith(a) : host === a));
  };

  return async (req: IncomingMessage, url: URL, route: RouteOptions) => {
    const method = req.method ?? 'GET';
    const host = hostHeader(req);
    if (checkHost && host !== undefined && !hostAllowed(host.name)) {
      throw refuse('host', 403, `host "${host.name.slice(0, 100)}" is not a name of this gateway (add it to http.allowedHosts)`);
    }

    const changesState = !SAFE_METHODS.has(method);
    const api = url.pathname.startsWith('/api/') || url.pathname === '/metrics';
    if ((changesState || api) && isCrossSite(req, host?.raw)) {
      throw refuse('cross_site', 403, 'requests from a web page of another site are refused');
    }

    if (changesState && !route.anyBody && /^(POST|PUT|PATCH)$/.test(method) && !isJson(req.headers['content-type'])) {
      throw refuse('content_type', 415, 'send the body as Content-Type: application/json');
    }

    if (url.pathname === '/healthz') return;
    if (method === 'POST' && url.pathname === '/api/events') {
      principals.set(req, 'device'); // HTTP ingest checks its own bearer tokens
      return;
    }
    const peerIsLoopback = isLoopback(req.socket.remoteAddress);
    if (trustLoopback && peerIsLoopback) {
      principals.set(req, 'loopback');
      return;
    }
    if (basic) {
      try {
        await basic(req, url);
      } catch (err) {
        opts.countRefused?.('auth');
        throw err;
      }
      principals.set(req, 'user');
      return;
    }
    if (opts.allowAnonymous || (loopbackListener && trustLoopback)) {
      principals.set(req, 'anonymous');
      return;
    }
    throw refuse('auth', 401, 'authentication required: this gateway has no http.auth configured for clients off loopback');
  };
}

/**
 * The body-and-origin part of the guard for one route, for a route that may be served without the
 * guard (a bare listener): 415 unless JSON, 403 for a page of another site.
 */
export function assertSameOriginJson(req: IncomingMessage): void {
  if (!isJson(req.headers['content-type'])) throw new HttpError(415, 'send the body as Content-Type: application/json');
  if (isCrossSite(req, hostHeader(req)?.raw)) throw new HttpError(403, 'requests from a web page of another site are refused');
}

function hostHeader(req: IncomingMessage): { raw: string; name: string } | undefined {
  const raw = req.headers.host;
  if (!raw) return undefined; // HTTP/1.0 without Host: not a browser
  const h = raw.trim().toLowerCase();
  const name = h.startsWith('[') ? h.slice(1, h.indexOf(']') >>> 0) : h.replace(/:\d*$/, '');
  return { raw: h, name: name.replace(/\.$/, '') };
}

/**
 * A browser request made by a page of another origin: an `Origin` whose host:port differs from
 * `Host`, or a `Sec-Fetch-Site` other than `same-origin` (or `none`: a typed URL, a bookmark).
 */
function isCrossSite(req: IncomingMessage, host: string | undefined): boolean {
  const site = req.headers['sec-fetch-site'];
  const origin = req.headers.origin;
  if (origin !== undefined) {
    if (origin === 'null') return true;
    try {
      const o = new URL(origin);
      if (host === undefined || o.host.toLowerCase() !== host) return true;
    } catch {
      return true;
    }
  }
  return typeof site === 'string' && site !== 'same-origin' && site !== 'none';
}

function isJson(type: string | undefined): boolean {
  return type !== undefined && /^application\/json\s*(;|$)/i.test(type.trim());
}
