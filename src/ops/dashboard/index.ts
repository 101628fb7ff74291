/**
 * The live dashboard: `GET /` serves one self-contained page (inline CSS and JS, no external URL, so
 * it works with no internet), and `GET /api/stream` is its Server-Sent Events feed. Guarantees:
 * - one timer for all viewers: the status is built once per tick (default 1 s) and the same frame
 *   is written to every open stream; with no viewer there is no timer and no work;
 * - bounded: at most `maxClients` streams (more get a 503), and a viewer that does not keep up
 *   (more than `maxBufferedBytes` unsent) is disconnected instead of buffering without limit;
 *   the browser's EventSource reconnects by itself;
 * - a frame is `event: status` with JSON `{now, status, readings}`: `status` is exactly what
 *   `GET /api/status` returns, `now` the gateway's clock (ages are computed against it, not the
 *   viewer's), `readings` the latest numeric value per topic for the chart;
 * - a failing `status()` is logged once per failure streak and the stream goes on.
 * With `auth` given, the HTTP server's guard asks for basic auth (see auth.ts).
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';
import type { Logger } from 'pino';
import { silentLogger } from '../../log.js';
import type { HttpServer } from '../http-server.js';
import { basicAuthGuard, type HttpAuth } from '../../auth/http-basic.js';
import { PAGE_HTML } from './page.js';
import type { Reading } from './readings.js';

export { basicAuthGuard, type HttpAuth } from '../../auth/http-basic.js';
export { LatestReadings, type Reading } from './readings.js';

export interface DashboardSource {
  /** The `GET /api/status` document. */
  status(): object;
  /** The latest numeric reading per topic (LatestReadings does this); optional. */
  recentReadings?(): Reading[];
}

export interface DashboardOptions {
  intervalMs?: number;
  maxClients?: number;
  maxBufferedBytes?: number;
  /** Readings sent per frame (most recently updated topics first). */
  maxTopics?: number;
  auth?: HttpAuth;
  logger?: Logger;
}

export interface Dashboard {
  /** Open streams right now. */
  readonly clients: number;
  /** Ends every stream and stops the timer (gateway stop). */
  close(): void;
}

const PAGE = Buffer.from(PAGE_HTML, 'utf8');
const PAGE_GZ = gzipSync(PAGE, { level: 9 });

export function registerDashboard(
  http: HttpServer,
  source: DashboardSource,
  options: DashboardOptions = {},
): Dashboard {
  const intervalMs = options.intervalMs ?? 1000;
  const maxClients = options.maxClients ?? 16;
  const maxBuffered = options.maxBufferedBytes ?? 1024 * 1024;
  const maxTopics = options.maxTopics ?? 50;
  const logger = options.logger ?? silentLogger;
  const clients = new Set<ServerResponse>();
  let timer: NodeJS.Timeout | undefined;
  let failing = false;
  let closed = false;

  if (options.auth) http.guard = basicAuthGuard(options.auth);

  const frame = (): string | undefined => {
    try {
      const readings = source.recentReadings?.().slice(0, maxTopics) ?? [];
      const body = JSON.stringify({ now: Date.now(), status: source.status(), readings });
      failing = false;
      return `event: status\ndata: ${body}\n\n`;
    } catch (err) {
      if (!failing) logger.warn({ err }, 'dashboard: building the status failed; the stream skips this tick');
      failing = true;
      return undefined;
    }
  };

  const drop = (res: ServerResponse) => {
    clients.delete(res);
    if (clients.size === 0 && timer) {
      clearInterval(timer);
      timer = undefined;
    }
  };

  const tick = () => {
    const text = frame();
    if (text === undefined) return;
    for (const res of clients) {
      if (res.writableLength > maxBuffered) {
        logger.info('dashboard: a viewer fell behind and was disconnected (it reconnects by itself)');
        res.destroy();
        drop(res);
        continue;
      }
      res.write(text);
    }
  };

  http.route('GET', '/', (req: IncomingMessage, res: ServerResponse) => {
    const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-cache',
      'content-security-policy':
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      vary: 'accept-encoding',
      ...(gzip ? { 'content-encoding': 'gzip' } : {}),
    });
    res.end(gzip ? PAGE_GZ : PAGE);
  });

  http.route('GET', '/api/stream', (req: IncomingMessage, res: ServerResponse) => {
    if (closed || clients.size >= maxClients) {
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '10' });
      res.end(JSON.stringify({ error: `too many dashboard viewers (at most ${maxClients})` }));
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      // Tells a reverse proxy (nginx) not to buffer the stream.
      'x-accel-buffering': 'no',
    });
    // The browser waits this long before reconnecting after the gateway went away.
    res.write('retry: 3000\n\n');
    const first = frame();
    if (first) res.write(first);
    clients.add(res);
    req.socket.setNoDelay(true);
    res.on('close', () => drop(res));
    if (!timer) {
      timer = setInterval(tick, intervalMs);
      timer.unref();
    }
  });

  return {
    get clients() {
      return clients.size;
    },
    close() {
      closed = true;
      for (const res of clients) res.end();
      clients.clear();
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}
