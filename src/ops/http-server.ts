/**
 * The gateway's HTTP listener: a small router on node:http (no framework: it runs on a Pi). Routes
 * are registered by the components that own them (ops: status, metrics, dashboard; drivers: event
 * ingest; uplink: local consumers). Bodies are read with a size limit; handler errors become a JSON
 * 500 with one sentence, never a stack trace.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';

export type RouteHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;

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
  private readonly routes = new Map<string, RouteHandler>();
  private server?: Server;
  /** Called before every route; throws (or rejects with) HttpError to refuse (basic auth, which is async: scrypt). */
  guard?: (req: IncomingMessage, url: URL) => void | Promise<void>;

  constructor(private readonly logger: Logger) {}

  route(method: string, path: string, handler: RouteHandler): void {
    this.routes.set(`${method} ${path}`, handler);
  }

  unroute(method: string, path: string): void {
    this.routes.delete(`${method} ${path}`);
  }

  async listen(host: string, port: number): Promise<void> {
    const server = createServer((req, res) => void this.handle(req, res));
    server.keepAliveTimeout = 5_000;
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
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
    const url = new URL(req.url ?? '/', 'http://localhost');
    const handler = this.routes.get(`${req.method} ${url.pathname}`);
    try {
      if (!handler) {
        const other = [...this.routes.keys()].some((k) => k.endsWith(` ${url.pathname}`));
        throw new HttpError(other ? 405 : 404, other ? 'method not allowed' : `no such path: ${url.pathname}`);
      }
      await this.guard?.(req, url);
      await handler(req, res, url);
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
