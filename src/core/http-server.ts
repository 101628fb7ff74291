/**
 * The gateway's HTTP listener: a small router on node:http (no framework: it runs on a Pi). Routes
 * are registered by the components that own them (ops: status, metrics, dashboard; drivers: event
 * ingest; uplink: local consumers). Bodies are read with a size limit; handler errors become a JSON
 * 500 with one sentence, never a stack trace.
 *
 * Bounded: at most `maxConnections` sockets at once (more are closed on accept, counted and logged);
 * a socket that has not sent a complete request head within `headersTimeout` is closed (idle and
 * slow-loris sockets never pile up to exhaust file descriptors); an idle keep-alive socket is closed
 * after `keepAliveTimeout`, a request body must arrive within `requestTimeout`. Responses (SSE
 * streams, long polls) are not cut by these timers.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';

export type RouteHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;

export interface RouteOptions {
  /** The body is not JSON (HTTP ingest: NDJSON, gzip, bodies from devices): the guard does not ask for `application/json`. */
  anyBody?: boolean;
}

/** Called before every route; throws (or rejects with) HttpError to refuse (basic auth is async: scrypt). */
export type RequestGuard = (req: IncomingMessage, url: URL, route: RouteOptions) => void | Promise<void>;

export interface ListenLimits {
  maxConnections?: number;
  headersTimeout?: number;
  keepAliveTimeout?: number;
  requestTimeout?: number;
}

const DEFAULT_LIMITS: Required<ListenLimits> = {
  maxConnections: 256,
  headersTimeout: 10_000,
  keepAliveTimeout: 5_000,
  requestTimeout: 30_000,
};
const WAITING_FOR_REQUEST = Symbol('waitingForRequest');

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export class HttpServer {
  private readonly routes = new Map<string, { handler: RouteHandler; options: RouteOptions }>();
  private server?: Server;
  private lastDropLog = 0;
  /** Connections closed on accept because `maxConnections` were open. */
  refusedConnections = 0;
  /** Called before every route (see RequestGuard); auth/request-guard.ts makes the gateway's. */
  guard?: RequestGuard;

  constructor(private readonly logger: Logger) {}

  route(method: string, path: string, handler: RouteHandler, options: RouteOptions = {}): void {
    this.routes.set(`${method} ${path}`, { handler, options });
  }

  unroute(method: string, path: string): void {
    this.routes.delete(`${method} ${path}`);
  }

  async listen(host: string, port: number, limits: ListenLimits = {}): Promise<void> {
    const l = { ...DEFAULT_LIMITS, ...limits };
    const server = createServer((req, res) => void this.handle(req, res));
    server.keepAliveTimeout = l.keepAliveTimeout;
    server.headersTimeout = l.headersTimeout;
    server.requestTimeout = l.requestTimeout;
    server.maxConnections = l.maxConnections;
    // Node's headersTimeout only runs once a request has begun: a socket that never sends a byte
    // would stay open for ever. Until its first request arrives it gets the same deadline.
    server.on('connection', (socket: Socket & { [WAITING_FOR_REQUEST]?: boolean }) => {
      socket[WAITING_FOR_REQUEST] = true;
      socket.setTimeout(l.headersTimeout);
    });
    server.on('drop', (info) => {
      this.refusedConnections++;
      if (Date.now() - this.lastDropLog > 10_000) {
        this.lastDropLog = Date.now();
        this.logger.warn(
          { max: l.maxConnections, from: info?.remoteAddress, refused: this.refusedConnections },
          'HTTP connection refused: http.maxConnections reached',
        );
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
  }

  /** Sockets open on the listener now. */
  get connections(): Promise<number> {
    const server = this.server;
    if (!server) return Promise.resolve(0);
    return new Promise((resolve) => server.getConnections((err, n) => resolve(err ? 0 : n)));
  }

  get address(): { host: string; port: number } | undefined {
    const a = this.server?.address();
    return a && typeof a === 'object' ? { host: a.address, port: a.port } : undefined;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const socket = req.socket as Socket & { [WAITING_FOR_REQUEST]?: boolean };
    if (socket[WAITING_FOR_REQUEST]) {
      socket[WAITING_FOR_REQUEST] = false;
      socket.setTimeout(0); // a long poll or a stream may now be quiet for a while
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = this.routes.get(`${req.method} ${url.pathname}`);
    try {
      if (!route) {
        const other = [...this.routes.keys()].some((k) => k.endsWith(` ${url.pathname}`));
        throw new HttpError(other ? 405 : 404, other ? 'method not allowed' : `no such path: ${url.pathname}`);
      }
      await this.guard?.(req, url, route.options);
      await route.handler(req, res, url);
    } catch (err) {
      const status = err instanceof HttpError ? err.status : 500;
      if (status === 500) this.logger.error({ err, path: url.pathname }, 'HTTP handler failed');
      if (!res.headersSent) {
        sendJson(
          res,
          status,
          { error: err instanceof Error ? err.message : String(err) },
          err instanceof HttpError ? err.headers : {},
        );
      } else res.destroy();
    }
  }
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(text);
}

/** Reads a request body, refusing (413) one larger than `maxBytes` without buffering it. */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    req.resume();
    throw new HttpError(413, `body of ${declared} bytes exceeds the limit of ${maxBytes} bytes`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    total += (chunk as Buffer).length;
    if (total > maxBytes) {
      req.resume();
      throw new HttpError(413, `body exceeds the limit of ${maxBytes} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
