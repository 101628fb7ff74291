/**
 * HTTP ingest: `POST /api/events` on the gateway's HTTP listener, for devices and scripts that
 * speak HTTP(S) rather than MQTT. The body is one event `{"topic", "payload", "deviceTs"?}`, a JSON
 * array of them, or NDJSON (one per line), optionally gzip-encoded.
 *
 * Guarantees (the HTTP twin of the broker's QoS 1 PUBACK):
 * - a 2xx is sent only after the append of every event of the request resolved: they are durable;
 *   a request is all or nothing (one bad item refuses the whole request, nothing is stored);
 * - authentication: `Authorization: Bearer <token>`, checked against the `tokenHash` of
 *   `broker.users` (scrypt), and the user's `publish` topic filters apply as they do on MQTT;
 *   without a token only when anonymous clients are allowed. 401 for a missing or wrong token, 403
 *   for a topic outside the ACL, 413 over the size limit, 400 naming the item (index) or line of a
 *   malformed one (a payload nested deeper than 64 levels included), 503 (with Retry-After) only
 *   when the ring log refuses or fails (transient: the same request may succeed later); each refusal is
 *   counted by reason through `countRejected`, with the broker's names (`auth_failed`,
 *   `auth_anonymous`, `auth_rate_limited`, `acl_publish`, `oversize`, `malformed`, `buffer_full`).
 * - tokens are checked by the gateway's shared `Logins` (src/auth/logins.ts): failures per client
 *   address are limited (an attempt counts before its check), scrypt runs on its own thread (503
 *   `auth_busy` past its queue), and a verified token is remembered, so scrypt runs once per token.
 */
import { gunzip } from 'node:zlib';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isForeignWebOrigin } from '../../src/auth/origin.js';
import { Logins } from '../../src/auth/logins.js';
import type { UserCredentials } from '../../src/auth/users.js';
import { topicMatches } from '../../src/core/topics.js';
import { isValidTopicFilter } from '../../src/core/config-types.js';
import type { EventInput } from '../../src/core/event.js';
import { HttpError, type HttpServer, readBody, sendJson } from '../../src/core/http-server.js';

export interface HttpIngestOptions {
  /** The gateway's one path into the ring log; resolves when the events are durable. */
  ingest(events: EventInput[]): Promise<unknown>;
  /** `broker.users`: those with a `tokenHash` may post, to their `publish` topics. */
  users: readonly UserCredentials[];
  /** Largest request body accepted (413 above). */
  maxPayloadBytes: number;
  /** Requests without a token are accepted (to any topic not starting with `$`). */
  anonymous: boolean;
  countRejected(reason: string, n?: number): void;
  /** Failed token checks per client address per minute before further attempts get 429 (without `logins`). */
  maxAuthFailuresPerMinute?: number;
  /** The gateway's shared login checks (limits, scrypt thread, cache); one of its own without. */
  logins?: Logins;
}

export const INGEST_PATH = '/api/events';
const ITEM_KEYS = new Set(['topic', 'payload', 'deviceTs']);
/** Deepest payload nesting accepted (objects and arrays); real telemetry is a few levels deep. */
export const MAX_PAYLOAD_DEPTH = 64;

interface Principal {
  username: string | null;
  canPublish(topic: string): boolean;
}

/** Registers the route; returns a function that removes it (the gateway re-registers on reconfigure). */
export function registerHttpIngest(http: HttpServer, opts: HttpIngestOptions): () => void {
  const logins = opts.logins ?? new Logins({ perAddress: opts.maxAuthFailuresPerMinute ?? 10, perUser: Number.MAX_SAFE_INTEGER });
  const auth = new TokenAuth(opts.users, logins);
  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    let principal: Principal;
    try {
      principal = await auth.authenticate(req, opts.anonymous);
    } catch (err) {
      // The broker's reasons for the same refusals, so /api/status counts logins one way.
      opts.countRejected(err instanceof AuthRefused ? err.reason : 'auth_failed');
      throw err;
    }
    let body: Buffer;
    try {
      body = await decodeBody(await readBody(req, opts.maxPayloadBytes), req.headers['content-encoding'], opts.maxPayloadBytes);
    } catch (err) {
      if (err instanceof HttpError) opts.countRejected(err.status === 413 ? 'oversize' : 'malformed');
      throw err;
    }
    let events: EventInput[];
    try {
      events = parseBody(body, req.headers['content-type']);
    } catch (err) {
      opts.countRejected('malformed');
      throw err;
    }
    const refused = events.findIndex((e) => !principal.canPublish(e.topic));
    if (refused >= 0) {
      opts.countRejected('acl_publish', events.length);
      const who = principal.username === null ? 'anonymous clients' : `user "${principal.username}"`;
      throw new HttpError(403, `item ${refused}: ${who} may not publish to "${events[refused].topic}"`);
    }
    if (events.length === 0) {
      sendJson(res, 200, { accepted: 0 });
      return;
    }
    let result: unknown;
    try {
      result = await opts.ingest(events);
    } catch (err) {
      if ((err as { code?: string }).code === 'EVENT_NOT_ENCODABLE') {
        opts.countRejected('malformed', events.length);
        throw new HttpError(400, (err as Error).message);
      }
      const full = (err as { code?: string }).code === 'BUFFER_FULL';
      opts.countRejected(full ? 'buffer_full' : 'store_failed', events.length);
      throw new HttpError(
        503,
        full ? 'the gateway buffer is full; retry later' : `events not stored: ${(err as Error).message}`,
        {
          'retry-after': '1',
        },
      );
    }
    const seqs = result as { firstSeq?: number; lastSeq?: number } | undefined;
    sendJson(res, 200, {
      accepted: events.length,
      ...(typeof seqs?.firstSeq === 'number' ? { firstSeq: seqs.firstSeq, lastSeq: seqs.lastSeq } : {}),
    });
  };
  http.route('POST', INGEST_PATH, handler, { anyBody: true });
  return () => http.unroute('POST', INGEST_PATH);
}

/**
 * A gzip-encoded body (`Content-Encoding: gzip`, for devices on metered links), inflated with the
 * same size limit as a plain one, so a small bomb cannot expand into a large allocation.
 */
async function decodeBody(body: Buffer, encoding: string | undefined, maxBytes: number): Promise<Buffer> {
  const enc = (encoding ?? 'identity').trim().toLowerCase();
  if (enc === 'identity' || enc === '') return body;
  if (enc !== 'gzip') throw new HttpError(415, `Content-Encoding "${enc}" is not supported (use gzip or none)`);
  try {
    return await new Promise<Buffer>((resolve, reject) =>
      gunzip(body, { maxOutputLength: maxBytes }, (err, out) => (err ? reject(err) : resolve(out))),
    );
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new HttpError(413, `gzip body inflates beyond the limit of ${maxBytes} bytes`);
    }
    throw new HttpError(400, `body is not valid gzip (${(err as Error).message})`);
  }
}

/**
 * The events of a request body: a JSON object or array, or else NDJSON. Throws a 400 naming the
 * item index (JSON array) or line number (NDJSON) of the first bad item.
 */
export function parseBody(body: Buffer, contentType?: string): EventInput[] {
  const text = body.toString('utf8');
  if (text.trim() === '')
    throw new HttpError(400, 'empty body: send {"topic", "payload"}, an array of them, or NDJSON');
  const ndjson = /ndjson|jsonl|json-seq|x-json-stream/i.test(contentType ?? '');
  if (!ndjson) {
    let value: unknown;
    let parsed = true;
    try {
      value = JSON.parse(text);
    } catch (err) {
      parsed = false;
      // Several lines that are each JSON: NDJSON sent without its content type.
      if (/application\/json/i.test(contentType ?? '') && !text.trim().includes('\n')) {
        throw new HttpError(400, `body is not JSON (${(err as Error).message})`);
      }
    }
    if (parsed) {
      if (Array.isArray(value)) return value.map((item, i) => toEvent(item, `item ${i}`));
      return [toEvent(value, 'body')];
    }
  }
  const events: EventInput[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new HttpError(400, `line ${i + 1}: not JSON (${(err as Error).message})`);
    }
    events.push(toEvent(value, `line ${i + 1}`));
  }
  return events;
}

function toEvent(item: unknown, where: string): EventInput {
  if (item === null || typeof item !== 'object' || Array.isArray(item))
    throw new HttpError(400, `${where}: not an object {"topic", "payload"}`);
  const o = item as Record<string, unknown>;
  for (const k of Object.keys(o))
    if (!ITEM_KEYS.has(k)) throw new HttpError(400, `${where}: unknown key "${k}" (allowed: topic, payload, deviceTs)`);
  const topic = o.topic;
  if (typeof topic !== 'string' || topic.length === 0)
    throw new HttpError(400, `${where}: "topic" must be a non-empty string`);
  if (/[+#\u0000]/.test(topic) || !isValidTopicFilter(topic))
    throw new HttpError(400, `${where}: "${topic}" is not a valid topic (no + or #)`);
  if (topic.startsWith('$')) throw new HttpError(400, `${where}: topics starting with $ are reserved`);
  if (!('payload' in o)) throw new HttpError(400, `${where}: "payload" is missing`);
  // A payload nested deeper than this would overflow the stack where it is serialised or read: that
  // is the request's fault (400), not the gateway's (a 503 would make the device retry for ever).
  if (nestingDepth(o.payload, MAX_PAYLOAD_DEPTH) > MAX_PAYLOAD_DEPTH)
    throw new HttpError(400, `${where}: "payload" is nested deeper than ${MAX_PAYLOAD_DEPTH} levels`);
  const event: EventInput = { source: 'http', topic, payload: o.payload };
  if (o.deviceTs !== undefined) {
    const ts =
      typeof o.deviceTs === 'number'
        ? o.deviceTs
        : typeof o.deviceTs === 'string'
          ? Date.parse(o.deviceTs)
          : Number.NaN;
    if (!Number.isFinite(ts))
      throw new HttpError(400, `${where}: "deviceTs" must be epoch milliseconds or an ISO 8601 time`);
    event.deviceTs = ts;
  }
  return event;
}

/** Depth of objects and arrays in a parsed JSON value (iterative; stops counting past `limit`). */
function nestingDepth(value: unknown, limit: number): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (d + 1 > max) max = d + 1;
    if (max > limit) return max;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, d + 1]);
  }
  return max;
}

/** A refused authentication, with the reason it is counted under. */
class AuthRefused extends HttpError {
  constructor(
    status: number,
    message: string,
    headers: Record<string, string>,
    readonly reason: 'auth_anonymous' | 'auth_failed' | 'auth_rate_limited' | 'auth_busy',
  ) {
    super(status, message, headers);
  }
}

class TokenAuth {
  private readonly tokenUsers: { user: UserCredentials; principal: Principal }[];
  private readonly hashes: string[];
  private readonly anonymous: Principal = { username: null, canPublish: (t) => !t.startsWith('$') };

  constructor(
    users: readonly UserCredentials[],
    private readonly logins: Logins,
  ) {
    this.tokenUsers = users
      .filter((u) => u.tokenHash)
      .map((user) => ({
        user,
        principal: {
          username: user.username,
          canPublish: (t: string) => !t.startsWith('$') && user.publish.some((f) => topicMatches(f, t)),
        },
      }));
    this.hashes = this.tokenUsers.map((u) => u.user.tokenHash as string);
  }

  async authenticate(req: IncomingMessage, anonymous: boolean): Promise<Principal> {
    const header = req.headers.authorization;
    const challenge = { 'www-authenticate': 'Bearer realm="sluice"' };
    if (!header) {
      // A browser page from another site could make the operator's browser post here (a simple
      // text/plain POST needs no CORS preflight): anonymous posts carrying a foreign Origin are refused.
      if (anonymous && isForeignWebOrigin(req)) {
        throw new AuthRefused(403, 'anonymous posts from a web page on another site are refused', {}, 'auth_anonymous');
      }
      if (anonymous) return this.anonymous;
      throw new AuthRefused(401, 'a bearer token is required (Authorization: Bearer <token>)', challenge, 'auth_anonymous');
    }
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) throw new AuthRefused(401, 'the Authorization header must be "Bearer <token>"', challenge, 'auth_failed');
    // The gateway's shared login checks: limits per address first, then the cache of verified
    // tokens, then scrypt on its own thread against each user's token hash.
    const result = await this.logins.check({ address: req.socket.remoteAddress ?? 'unknown', secret: m[1], hashes: this.hashes });
    if (result.ok) return this.tokenUsers[result.index].principal;
    if (result.reason === 'auth_rate_limited') {
      throw new AuthRefused(429, 'too many failed token checks from this address; wait a minute', { 'retry-after': '60' }, 'auth_rate_limited');
    }
    if (result.reason === 'auth_busy') {
      throw new AuthRefused(503, 'too many logins are being checked; retry shortly', { 'retry-after': '1' }, 'auth_busy');
    }
    throw new AuthRefused(401, 'unknown bearer token', challenge, 'auth_failed');
  }
}
