/**
 * Local consumers: applications on the device or the LAN (a historian, a PLC bridge) read the ring
 * log over HTTP with the same at-least-once guarantee as a cloud uplink.
 *
 * - `GET /api/events?consumer=NAME` hands out the next batch from that consumer's persisted cursor
 *   (`local:NAME` in the ring log): as a long poll (`wait=30s`, `max=500` events, `maxBytes=`) the
 *   response is one contract-style batch `{"consumer", "batchId", "events": [...]}` (no events and a
 *   null batchId when nothing came within `wait`); with `Accept: text/event-stream` (or `mode=sse`)
 *   it is a Server-Sent Events stream of such batches (`event: batch`, `id: <batchId>`), at most
 *   `window` of them unacknowledged at a time.
 * - `POST /api/events/ack` with `{"consumer", "batchId"}` (or `"batchIds": [...]`) acknowledges
 *   those batches; `{"consumer", "upTo": seq}` everything up to seq (for a single reader: with
 *   several readers of one name, ack by batch id, or you acknowledge the others' batches too).
 *   An ack covers only events handed to that consumer: anything beyond is a 400 and changes nothing.
 * - Names: declared, or created by an authenticated client; idle ones are released (names.ts).
 * - Several requests under one name share the work (each gets different batches). A batch not
 *   acknowledged within `ackTimeout`, or held by a stream that closed, is handed out again.
 * - Bounded: `maxConsumers` names, `maxInFlight` unacknowledged batches per name, `maxRequests`
 *   open requests; beyond a bound the request is refused with 429 and one sentence.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { z } from 'zod';
import type { RingLog } from '../../buffer/types.js';
import { HttpError, type HttpServer, readBody, sendJson } from '../../src/core/http-server.js';
import { parseDuration } from '../../src/core/units.js';
import type { ConsumerGroup, InFlight } from './group.js';
import { ConsumerNames, mayCreate, NAME } from './names.js';
import { type LocalConsumersConfig, localConsumersSchema } from './schema.js';

export { type LocalConsumersConfig, localConsumersSchema } from './schema.js';

const SSE_PING_MS = 15_000;

export interface LocalConsumersOptions {
  /** The `localConsumers` options (defaults apply to what is missing). */
  config?: z.input<typeof localConsumersSchema>;
  logger: Logger;
  /** Where `sluice_local_consumer_*` metrics go (the gateway's registry, never the global one). */
  registry?: Registry;
}

export interface LocalConsumerStatus {
  name: string;
  inFlightBatches: number;
  pendingEvents: number;
  committedSeq: number;
  deliveredEvents: number;
  redeliveredEvents: number;
  ackedEvents: number;
}

export interface LocalConsumers {
  status(): { requests: number; idleReleased: number; consumers: LocalConsumerStatus[] };
  /** Ends open streams and polls and removes the routes. */
  close(): void;
}

export function registerLocalConsumers(http: HttpServer, log: RingLog, opts: LocalConsumersOptions): LocalConsumers {
  const config: LocalConsumersConfig = localConsumersSchema.parse(opts.config ?? {});
  const logger = opts.logger.child({ component: 'local-consumers' });
  const open = new Set<AbortController>();
  const metrics = opts.registry ? localMetrics(opts.registry) : undefined;
  let closed = false;

  const names = new ConsumerNames(log, config, logger, () => metrics?.idleReleased.inc());
  const groups = names.groups;

  /** Registers an open request (bounded), aborted when the client goes away or the gateway stops. */
  const admit = (req: IncomingMessage, res: ServerResponse): AbortController => {
    if (closed) throw new HttpError(503, 'the gateway is stopping');
    if (open.size >= config.maxRequests)
      throw new HttpError(429, `too many open event requests (maxRequests ${config.maxRequests}); retry later`, {
        'retry-after': '1',
      });
    const ac = new AbortController();
    open.add(ac);
    const gone = () => ac.abort();
    req.on('close', gone);
    res.on('close', gone);
    ac.signal.addEventListener('abort', () => open.delete(ac), { once: true });
    return ac;
  };

  const limits = (url: URL) => {
    const max = intParam(url, 'max', 500, 1, config.maxBatchEvents);
    const maxBytes = intParam(url, 'maxBytes', config.maxBatchBytes, 1024, config.maxBatchBytes);
    const waitText = url.searchParams.get('wait');
    const wait = waitText === null ? 0 : parseDuration(/^\d+$/.test(waitText) ? `${waitText}s` : waitText);
    if (wait === undefined) throw new HttpError(400, `wait "${waitText}" is not a duration (e.g. 30s)`);
    return { max, maxBytes, wait: Math.min(wait, config.maxWait) };
  };

  /** Takes the next batch, waiting up to `until` (ms epoch) for one; null when none came. */
  const nextBatch = async (
    g: ConsumerGroup,
    owner: symbol,
    max: number,
    maxBytes: number,
    until: number,
    signal: AbortSignal,
  ): Promise<InFlight | null> => {
    for (;;) {
      const r = await g.take(owner, max, maxBytes);
      if (r.batch) {
        metrics?.inflight.set({ consumer: g.name }, g.inFlightBatches);
        metrics?.delivered.inc({ consumer: g.name }, r.batch.events.length);
        if (r.batch.deliveries > 1) metrics?.redelivered.inc({ consumer: g.name }, r.batch.events.length);
        return r.batch;
      }
      const left = until - Date.now();
      if (left <= 0 || signal.aborted) return null;
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(), left);
      const stop = () => ac.abort();
      signal.addEventListener('abort', stop, { once: true });
      // Full: only an ack, a release or an expiry frees a slot. Empty: new events, or a batch handed back.
      const waits = [g.changedOrAborted(ac.signal)];
      if (r.reason === 'empty') waits.push(g.reader.wait(ac.signal));
      await Promise.race(waits);
      clearTimeout(timer);
      signal.removeEventListener('abort', stop);
      ac.abort();
    }
  };

  http.route('GET', '/api/events', async (req, res, url) => {
    const g = await names.open(url.searchParams.get('consumer'), req, true);
    const { max, maxBytes, wait } = limits(url);
    const sse = url.searchParams.get('mode') === 'sse' || (req.headers.accept ?? '').includes('text/event-stream');
    const ac = admit(req, res);
    const owner = Symbol(g.name);
    g.openRequests++;
    try {
      if (!sse) {
        const b = await nextBatch(g, owner, max, maxBytes, Date.now() + wait, ac.signal);
        if (ac.signal.aborted) {
          g.release(owner);
          return;
        }
        const body = batchDocument(g.name, b);
        res.writeHead(200, {
          'content-type': 'application/json',
          'cache-control': 'no-store',
          ...(b ? { 'sluice-batch-id': b.id } : {}),
        });
        res.end(body);
        return;
      }
      await stream(g, owner, req, res, url, max, maxBytes, ac.signal);
    } finally {
      g.openRequests--;
      if (sse) g.release(owner);
      ac.abort();
    }
  });

  const stream = async (
    g: ConsumerGroup,
    owner: symbol,
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    max: number,
    maxBytes: number,
    signal: AbortSignal,
  ) => {
    const window = intParam(url, 'window', 4, 1, config.maxInFlight);
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(`retry: 2000\n: consumer ${g.name}\n\n`);
    const ping = setInterval(() => res.write(': ping\n\n'), SSE_PING_MS);
    ping.unref();
    try {
      while (!signal.aborted) {
        // Hold at most `window` unacknowledged batches on this stream.
        if (g.countOwnedBy(owner) >= window) {
          await g.changedOrAborted(signal);
          continue;
        }
        const b = await nextBatch(g, owner, max, maxBytes, Date.now() + SSE_PING_MS, signal);
        if (!b || signal.aborted) continue;
        const ok = res.write(sseFrame(b.id, batchDocument(g.name, b)));
        if (!ok)
          await new Promise<void>((r) => {
            const done = () => {
              res.off('drain', done);
              signal.removeEventListener('abort', done);
              r();
            };
            res.on('drain', done);
            signal.addEventListener('abort', done, { once: true });
          });
      }
    } finally {
      clearInterval(ping);
      if (!res.writableEnded) res.end();
      void req;
    }
  };

  http.route('POST', '/api/events/ack', async (req, res) => {
    const raw = await readBody(req, 64 * 1024);
    let body: { consumer?: unknown; batchId?: unknown; batchIds?: unknown; upTo?: unknown };
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new HttpError(
        400,
        'the body is not JSON (expected {"consumer": NAME, "batchId": "FIRST-LAST"} or {"consumer": NAME, "upTo": SEQ})',
      );
    }
    if (typeof body !== 'object' || body === null) throw new HttpError(400, 'the body must be a JSON object');
    const g = await names.open(typeof body.consumer === 'string' ? body.consumer : null, req, false);
    let result: { acked: number; unknown: string[] };
    if (body.upTo !== undefined) {
      if (typeof body.upTo !== 'number' || !Number.isSafeInteger(body.upTo) || body.upTo < 0)
        throw new HttpError(400, 'upTo must be a sequence number (a non-negative integer)');
      if (body.upTo > g.handedOutSeq)
        throw new HttpError(
          400,
          `upTo ${body.upTo} is beyond the last event handed to consumer "${g.name}" (${g.handedOutSeq}); nothing was acknowledged`,
        );
      result = await g.ackUpTo(body.upTo);
    } else {
      const ids = body.batchIds ?? (body.batchId === undefined ? undefined : [body.batchId]);
      if (
        !Array.isArray(ids) ||
        ids.length === 0 ||
        ids.length > config.maxInFlight ||
        !ids.every((i) => typeof i === 'string' && /^\d+-\d+$/.test(i))
      ) {
        throw new HttpError(400, `give "batchId" ("FIRST-LAST"), "batchIds" (at most ${config.maxInFlight}) or "upTo"`);
      }
      // Every id must name events handed to this consumer; one that does not refuses the whole ack.
      const bad = (ids as string[]).find((id) => {
        const [first, last] = id.split('-').map(Number);
        return !Number.isSafeInteger(first) || !Number.isSafeInteger(last) || first > last || last > g.handedOutSeq;
      });
      if (bad !== undefined)
        throw new HttpError(400, `batch "${bad}" was never handed to consumer "${g.name}"; nothing was acknowledged`);
      result = await g.ackBatches(ids as string[]);
    }
    metrics?.acked.inc({ consumer: g.name }, result.acked);
    metrics?.inflight.set({ consumer: g.name }, g.inFlightBatches);
    // Unknown ids are not an error: a duplicate ack, or a batch from before a restart, changes nothing.
    sendJson(res, 200, {
      consumer: g.name,
      acked: result.acked,
      ...(result.unknown.length ? { unknown: result.unknown } : {}),
    });
  });

  http.route('GET', '/api/events/consumers', (_req, res) => sendJson(res, 200, status()));

  // Removes a consumer name: its persisted cursor and its slot under maxConsumers.
  http.route('DELETE', '/api/events/consumers', async (req, res, url) => {
    const name = url.searchParams.get('consumer');
    if (!name || !NAME.test(name)) throw new HttpError(400, 'give the consumer to remove as ?consumer=NAME');
    if (!mayCreate(req)) throw new HttpError(403, 'only an authenticated client may remove a consumer');
    await names.remove(name);
    sendJson(res, 200, { consumer: name, removed: true });
  });

  const status = () => ({
    requests: open.size,
    idleReleased: names.idleReleased,
    consumers: [...groups.values()].map((g) => {
      const s = g.reader.stats();
      return {
        name: g.name,
        inFlightBatches: g.inFlightBatches,
        pendingEvents: s.pendingEvents,
        committedSeq: s.committedSeq,
        deliveredEvents: g.counters.delivered,
        redeliveredEvents: g.counters.redelivered,
        ackedEvents: g.counters.acked,
      };
    }),
  });

  logger.debug({ maxConsumers: config.maxConsumers, maxInFlight: config.maxInFlight }, 'local consumers ready');
  return {
    status,
    close() {
      closed = true;
      http.unroute('GET', '/api/events');
      http.unroute('POST', '/api/events/ack');
      http.unroute('GET', '/api/events/consumers');
      http.unroute('DELETE', '/api/events/consumers');
      for (const ac of [...open]) ac.abort();
      names.close();
    },
  };
}

function intParam(url: URL, key: string, def: number, min: number, max: number): number {
  const v = url.searchParams.get(key);
  if (v === null) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1)
    throw new HttpError(400, `${key} must be a positive integer, not "${v.slice(0, 40)}"`);
  return Math.min(max, Math.max(min, n));
}

/** `{"consumer", "batchId", "events": [...]}` from the stored JSON, without re-encoding it. */
function batchDocument(consumer: string, b: InFlight | null): string {
  if (!b) return `{"consumer":${JSON.stringify(consumer)},"batchId":null,"events":[]}`;
  let s = `{"consumer":${JSON.stringify(consumer)},"batchId":"${b.id}","events":[`;
  for (let i = 0; i < b.events.length; i++) s += (i ? ',' : '') + b.events[i].json;
  return `${s}]}`;
}

/** One SSE message; a stored payload may span lines, and SSE joins `data:` lines back with "\n". */
function sseFrame(id: string, data: string): string {
  return `event: batch\nid: ${id}\ndata: ${data.split(/\r\n|\r|\n/).join('\ndata: ')}\n\n`;
}

interface LocalMetrics {
  idleReleased: Counter;
  delivered: Counter<'consumer'>;
  redelivered: Counter<'consumer'>;
  acked: Counter<'consumer'>;
  inflight: Gauge<'consumer'>;
}

const byRegistry = new WeakMap<Registry, LocalMetrics>();

function localMetrics(registry: Registry): LocalMetrics {
  const existing = byRegistry.get(registry);
  if (existing) return existing;
  const registers = [registry];
  const m: LocalMetrics = {
    idleReleased: new Counter({
      name: 'sluice_local_consumer_idle_released_total',
      help: 'Local consumers whose cursor was dropped after idleTimeout without a request or an ack.',
      registers,
    }),
    delivered: new Counter({
      name: 'sluice_local_consumer_delivered_events_total',
      help: 'Events handed to local consumers (redeliveries included).',
      labelNames: ['consumer'],
      registers,
    }),
    redelivered: new Counter({
      name: 'sluice_local_consumer_redelivered_events_total',
      help: 'Events handed out again after an ack timeout or a closed stream.',
      labelNames: ['consumer'],
      registers,
    }),
    acked: new Counter({
      name: 'sluice_local_consumer_acked_events_total',
      help: 'Events local consumers acknowledged.',
      labelNames: ['consumer'],
      registers,
    }),
    inflight: new Gauge({
      name: 'sluice_local_consumer_inflight_batches',
      help: 'Unacknowledged batches per local consumer.',
      labelNames: ['consumer'],
      registers,
    }),
  };
  byRegistry.set(registry, m);
  return m;
}
