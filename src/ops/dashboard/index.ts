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
 * The chart library (uPlot) is served from the gateway itself (`/assets/`), never from a CDN.
 * With `auth` given, the HTTP server's guard asks for basic auth (src/auth/http-basic.ts).
 */

import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { gzipSync } from 'node:zlib';
import type { Logger } from 'pino';
import { silentLogger } from '../../core/log.js';
import type { HttpServer } from '../../core/http-server.js';
import { basicAuthGuard, type HttpAuth } from '../../auth/http-basic.js';
import type { AlarmList } from './alarms.js';
import { type HistoryOptions, registerAlarmRoutes, registerHistoryRoute } from './api.js';
import type { ScannableLog } from './history.js';
import { PAGE_HTML } from './page.js';
import type { Reading, TopicRate } from './readings.js';

export { basicAuthGuard, type HttpAuth } from '../../auth/http-basic.js';
export { AlarmList } from './alarms.js';
export { asScannable, type ScannableLog } from './history.js';
export { LatestReadings, type Reading } from './readings.js';

export interface DashboardSource {
  /** The `GET /api/status` document. */
  status(): object;
  /** The latest numeric reading per topic (LatestReadings does this); optional. */
  recentReadings?(): Reading[];
  /** The busiest topics by rate since the previous call (LatestReadings does this); optional. */
  topicRates?(n: number): { topics: TopicRate[]; counted: number };
  /** The ring log, for `/api/history` (absent while it is not open). */
  log?(): ScannableLog | undefined;
  /** The alarm list, for `/api/alarms` and the frames. */
  alarms?: AlarmList;
}

export interface DashboardOptions {
  intervalMs?: number;
  maxClients?: number;
  maxBufferedBytes?: number;
  /** Readings sent per frame (most recently updated topics first). */
  maxTopics?: number;
  /** Topics in the broker view's rate table (default 10). */
  rateTopics?: number;
  history?: HistoryOptions;
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

interface Asset {
  type: string;
  body: Buffer;
  gz: Buffer;
}

const ASSET_FILES: Record<string, [file: string, type: string]> = {
  '/assets/uplot.js': ['uplot/dist/uPlot.iife.min.js', 'text/javascript; charset=utf-8'],
  '/assets/uplot.css': ['uplot/dist/uPlot.min.css', 'text/css; charset=utf-8'],
};
const assets = new Map<string, Asset>();

/** A file of an npm package, read and compressed on first use and kept (a few tens of KB). */
function asset(path: string): Asset {
  let a = assets.get(path);
  if (!a) {
    const [file, type] = ASSET_FILES[path];
    const body = readFileSync(createRequire(import.meta.url).resolve(file));
    a = { type, body, gz: gzipSync(body, { level: 9 }) };
    assets.set(path, a);
  }
  return a;
}

const acceptsGzip = (req: IncomingMessage) => /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));

export function registerDashboard(
  http: HttpServer,
  source: DashboardSource,
  options: DashboardOptions = {},
): Dashboard {
  const intervalMs = options.intervalMs ?? 1000;
  const maxClients = options.maxClients ?? 16;
  const maxBuffered = options.maxBufferedBytes ?? 1024 * 1024;
  const maxTopics = options.maxTopics ?? 50;
  const rateTopics = options.rateTopics ?? 10;
  const logger = options.logger ?? silentLogger;
  const clients = new Set<ServerResponse>();
  let timer: NodeJS.Timeout | undefined;
  let failing = false;
  let closed = false;
  let rates: { topics: TopicRate[]; counted: number } | null = null;

  if (options.auth) http.guard = basicAuthGuard(options.auth);
  if (source.log) registerHistoryRoute(http, source.log, options.history);
  if (source.alarms) registerAlarmRoutes(http, source.alarms);

  const frame = (): string | undefined => {
    try {
      const readings = source.recentReadings?.().slice(0, maxTopics) ?? [];
      const alarms = source.alarms?.list(20) ?? null;
      const body = JSON.stringify({ now: Date.now(), status: source.status(), readings, alarms, topicRates: rates });
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
    // Rates are measured between ticks only (a viewer connecting must not cut an interval short).
    rates = source.topicRates?.(rateTopics) ?? null;
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
    const gzip = acceptsGzip(req);
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-cache',
      'content-security-policy':
        "default-src 'none'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      vary: 'accept-encoding',
      ...(gzip ? { 'content-encoding': 'gzip' } : {}),
    });
    res.end(gzip ? PAGE_GZ : PAGE);
  });

  for (const path of Object.keys(ASSET_FILES)) {
    http.route('GET', path, (req: IncomingMessage, res: ServerResponse) => {
      const a = asset(path);
      const gzip = acceptsGzip(req);
      res.writeHead(200, {
        'content-type': a.type,
        'cache-control': 'public, max-age=86400',
        'x-content-type-options': 'nosniff',
        vary: 'accept-encoding',
        ...(gzip ? { 'content-encoding': 'gzip' } : {}),
      });
      res.end(gzip ? a.gz : a.body);
    });
  }

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
