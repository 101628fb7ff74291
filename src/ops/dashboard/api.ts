/**
 * The dashboard's query routes: `GET /api/history` (a topic's newest readings from the ring log,
 * bounded), `GET /api/alarms` and `POST /api/alarms/ack` (acknowledge, persisted).
 *
 * History scans run at most `maxConcurrentScans` at a time (more get a 503 with Retry-After): on a
 * two-core device a few reloads must not starve ingest.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { assertSameOriginJson } from '../../auth/request-guard.js';
import { parseDuration } from '../../core/units.js';
import { HttpError, type HttpServer, readBody, sendJson } from '../../core/http-server.js';
import type { AlarmList } from './alarms.js';
import { DEFAULT_SCAN_LIMITS, readHistory, type ScanLimits, type ScannableLog } from './history.js';

export interface HistoryOptions {
  /** How far back a query goes when it does not say (default 1 h). */
  defaultSinceMs?: number;
  /** The furthest back a query may ask (default 24 h). */
  maxSinceMs?: number;
  /** Points per answer at most (default 2000; a query's `max` may ask fewer). */
  maxPoints?: number;
  maxConcurrentScans?: number;
  scan?: Partial<ScanLimits>;
}

export function registerHistoryRoute(http: HttpServer, log: () => ScannableLog | undefined, options: HistoryOptions = {}): void {
  const defaultSince = options.defaultSinceMs ?? 3600_000;
  const maxSince = options.maxSinceMs ?? 24 * 3600_000;
  const maxPoints = options.maxPoints ?? 2000;
  const maxScans = options.maxConcurrentScans ?? 2;
  const limits = { ...DEFAULT_SCAN_LIMITS, ...options.scan };
  let running = 0;

  http.route('GET', '/api/history', async (_req, res, url) => {
    const topic = url.searchParams.get('topic');
    if (!topic) throw new HttpError(400, 'say which topic: /api/history?topic=plant/tank/temp');
    const sinceText = url.searchParams.get('since');
    const since = sinceText === null ? defaultSince : parseDuration(sinceText);
    if (since === undefined || since <= 0) throw new HttpError(400, `since "${sinceText}" is not a duration such as 15m, 1h or 6h`);
    if (since > maxSince) throw new HttpError(400, `since may go back at most ${maxSince / 3600_000} h`);
    const maxText = url.searchParams.get('max');
    const max = maxText === null ? maxPoints : Number(maxText);
    if (!Number.isInteger(max) || max < 2 || max > maxPoints) throw new HttpError(400, `max must be a whole number from 2 to ${maxPoints}`);
    const source = log();
    if (!source) throw new HttpError(503, 'the ring log is not open', { 'retry-after': '5' });
    if (running >= maxScans) throw new HttpError(503, 'too many history queries at once; try again shortly', { 'retry-after': '1' });
    running++;
    try {
      sendJson(res, 200, await readHistory(source, { topic, since: Date.now() - since, max }, limits));
    } finally {
      running--;
    }
  });
}

export function registerAlarmRoutes(http: HttpServer, alarms: AlarmList): void {
  http.route('GET', '/api/alarms', (_req, res, url) => {
    const limit = Math.min(200, Math.max(1, Number(url.searchParams.get('limit') ?? 50) || 50));
    sendJson(res, 200, alarms.list(limit));
  });
  http.route('POST', '/api/alarms/ack', async (req: IncomingMessage, res: ServerResponse) => {
    assertSameOriginJson(req);
    let body: unknown;
    try {
      body = JSON.parse((await readBody(req, 16 * 1024)).toString('utf8'));
    } catch (err) {
      if (err instanceof HttpError) throw err;
      throw new HttpError(400, 'the body is not JSON');
    }
    const ids = (body as { ids?: unknown } | null)?.ids;
    if (!Array.isArray(ids) || ids.length === 0 || ids.length > 500 || !ids.every((id) => Number.isSafeInteger(id))) {
      throw new HttpError(400, 'send {"ids": [alarm id, ...]} with 1 to 500 alarm ids');
    }
    const acknowledged = await alarms.ack(ids as number[]);
    sendJson(res, 200, { acknowledged, ...alarms.list(0) });
  });
}
