/**
 * The HTTP sink: each batch is the contract document, POSTed to `url` with `Idempotency-Key: <batchId>`
 * (so a retried batch can be recognised by the endpoint), optionally gzip (`Content-Encoding: gzip`).
 *
 * Response classes:
 * - 2xx: accepted.
 * - 408, 425, 429 and 5xx: retried, honouring `Retry-After` (seconds or an HTTP date).
 * - 401, 403, 404, 405, 407, 421 and 3xx: retried. They say the endpoint or its credentials are wrong,
 *   not that these events are: dead-lettering would drain the whole log into the dead-letter store
 *   until the operator fixes the config. Status shows the answer.
 * - 413: the batch is split in halves and each half sent on its own (each with its own batchId); a
 *   single event that is still too large is rejected (dead-lettered).
 * - any other 4xx (400, 422, ...): the batch is bisected the same way to find the events the endpoint
 *   refuses (`isolateRejects`); those alone are rejected (dead-lettered) with the status and the start
 *   of the body as reason, the rest is delivered.
 * - no response (refused, reset, TLS failure, timeout): thrown, so the runner retries the whole batch.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { proxyAddress, proxyAgentFor, proxyUrlFor } from '../proxy.js';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { VERSION } from '../../src/core/version.js';
import { encodeBatch } from '../encode.js';
import { describeNetworkError } from '../errors.js';
import { allAccepted, type Batch, type SendResult, type Sink, type SinkHealth, type SinkContext } from '../sink.js';
import { sendInHalves } from '../split.js';
import { type LoadedTls, loadTls } from '../tls.js';
import type { HttpUplinkConfig } from './schema.js';

/** Response body kept for an error message; the rest is drained and dropped. */
const MAX_ERROR_BODY = 4096;
const RETRY_STATUS = new Set([408, 425, 429]);
/** Answers about the endpoint or the credentials, not the events: retried until the config is fixed. */
const CONFIG_STATUS = new Set([401, 403, 404, 405, 407, 421]);

export class HttpSink implements Sink {
  private readonly url: URL;
  private agent?: HttpAgent | HttpsAgent;
  /** The proxy in use (per-uplink `proxy:` or the environment), or undefined. */
  private proxy?: string;
  private tls?: LoadedTls;
  private connected = false;
  private lastError?: string;

  constructor(
    private readonly config: HttpUplinkConfig,
    private readonly ctx: SinkContext,
  ) {
    this.url = new URL(config.url);
  }

  async start(): Promise<void> {
    this.tls = loadTls(this.config.tls, this.config.name);
    const opts = { keepAlive: true, maxSockets: 2, ...(this.tls ?? {}) };
    this.proxy = proxyUrlFor(this.config.url, this.config.proxy);
    this.agent =
      (this.proxy ? proxyAgentFor(this.config.url, this.proxy, this.tls) : undefined) ??
      (this.url.protocol === 'https:' ? new HttpsAgent(opts) : new HttpAgent(opts));
    // A connection probe, so status shows whether the endpoint is reachable before the first batch.
    void this.probe();
  }

  async stop(): Promise<void> {
    this.probeSocket?.destroy();
    this.probeSocket = undefined;
    this.agent?.destroy();
    this.agent = undefined;
    this.connected = false;
  }

  health(): SinkHealth {
    return { connected: this.connected, lastError: this.lastError };
  }

  async send(batch: Batch): Promise<SendResult> {
    const body = await encodeBatch(batch, this.config.gzip);
    let res: { status: number; headers: IncomingMessage['headers']; body: string };
    try {
      res = await this.post(batch.batchId, body);
      this.connected = true;
    } catch (err) {
      this.connected = false;
      this.lastError = `${this.config.url}: ${describeNetworkError(err)}`;
      throw new Error(this.lastError);
    }
    const { status } = res;
    const all = batch.events.map((_, i) => i);
    if (status >= 200 && status < 300) return { ...allAccepted(batch), bytes: body.length };
    const reason = `${this.config.url} answered ${status}${res.body ? `: ${oneLine(res.body)}` : ''}`;
    this.lastError = reason;
    if (status === 413) return this.split(batch, reason, 'a single event too large');
    if (RETRY_STATUS.has(status) || CONFIG_STATUS.has(status) || status >= 500 || status < 400) {
      return {
        accepted: [],
        rejected: [],
        retry: all,
        retryAfterMs: retryAfter(res.headers['retry-after']),
        error: reason,
        bytes: body.length,
      };
    }
    // Other 4xx: something in these events is refused. Find which, unless told not to.
    if (this.config.isolateRejects) return this.split(batch, reason, 'refused');
    return { accepted: [], rejected: all, retry: [], error: reason, bytes: body.length };
  }

  /**
   * 413 and refused events: halves, each sent (and split further) on its own, so only the events the
   * endpoint cannot take are rejected.
   */
  private split(batch: Batch, reason: string, single: string): Promise<SendResult> {
    return sendInHalves(
      batch,
      (half) => this.send(half),
      () => ({ accepted: [], rejected: [0], retry: [], error: `${reason} (${single})` }),
    );
  }

  private post(
    batchId: string,
    body: Buffer,
  ): Promise<{ status: number; headers: IncomingMessage['headers']; body: string }> {
    const c = this.config;
    const headers: Record<string, string | number> = {
      'user-agent': `sluice/${VERSION}`,
      ...c.headers,
      'content-type': 'application/json',
      'content-length': body.length,
      'idempotency-key': batchId,
    };
    if (c.gzip) headers['content-encoding'] = 'gzip';
    if (c.bearerToken) headers.authorization = `Bearer ${c.bearerToken}`;
    const request = this.url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(this.url, { method: c.method, headers, agent: this.agent, timeout: c.timeout }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          if (text.length < MAX_ERROR_BODY) text += d.slice(0, MAX_ERROR_BODY - text.length);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
        res.on('error', reject);
      });
      // `timeout` is idle time on the socket; the deadline below bounds the whole exchange.
      const deadline = setTimeout(() => req.destroy(new Error(`no response within ${c.timeout} ms`)), c.timeout);
      req.on('timeout', () => req.destroy(new Error(`no response within ${c.timeout} ms`)));
      req.on('error', (err) => reject(err));
      req.on('close', () => clearTimeout(deadline));
      req.end(body);
    });
  }

  private probeSocket?: { destroy(): void };

  private probe(): Promise<void> {
    const port = Number(this.url.port) || (this.url.protocol === 'https:' ? 443 : 80);
    const host = this.url.hostname.replace(/^\[|\]$/g, '');
    // Behind a proxy only the proxy can be reached directly: probe it.
    const proxy = this.proxy ? proxyAddress(this.proxy) : undefined;
    return new Promise((resolve) => {
      const socket = proxy
        ? netConnect(proxy)
        : this.url.protocol === 'https:'
          ? tlsConnect({
              host,
              port,
              servername: this.tls?.servername ?? (isIp(host) ? undefined : host),
              ...(this.tls ?? {}),
            })
          : netConnect({ host, port });
      this.probeSocket = socket;
      const done = (err?: Error) => {
        clearTimeout(timer);
        socket.destroy();
        if (this.probeSocket === socket) this.probeSocket = undefined;
        if (err) this.lastError = `${this.config.url}: ${describeNetworkError(err)}`;
        else this.connected = true;
        resolve();
      };
      const timer = setTimeout(
        () => done(new Error(`no connection within ${this.config.timeout} ms`)),
        this.config.timeout,
      );
      timer.unref(); // never holds the process open after stop()
      socket.once(this.url.protocol === 'https:' ? 'secureConnect' : 'connect', () => done());
      socket.once('error', done);
    });
  }
}

/** `Retry-After` as ms: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function retryAfter(value: string | string[] | undefined): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim().slice(0, 200);
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}
