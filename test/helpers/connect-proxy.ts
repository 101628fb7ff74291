/**
 * A real HTTP CONNECT proxy for tests of the outbound-proxy support (uplink/proxy.ts): each CONNECT
 * is recorded with its target (`host:port`) and tunnelled, or, after `refuse(407)` (or 403, 502...),
 * answered with that status as a corporate proxy does when it wants credentials or forbids the
 * host. `refuse(undefined)` lets tunnels through again. Plain requests get 405.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';

const REASONS: Record<number, string> = { 403: 'Forbidden', 407: 'Proxy Authentication Required', 502: 'Bad Gateway' };

export interface ConnectProxy {
  server: Server;
  url: string;
  /** The target of every CONNECT asked for, refused ones included, in order. */
  tunnels: string[];
  /** How many CONNECTs were refused. */
  refusals: number;
  refuse(status: number | undefined): void;
  close(): Promise<void>;
}

export async function startConnectProxy(): Promise<ConnectProxy> {
  const sockets = new Set<Socket>();
  let refusing: number | undefined;
  const server = createServer((_req, res) => res.writeHead(405).end());
  const proxy: ConnectProxy = {
    server,
    url: '',
    tunnels: [],
    refusals: 0,
    refuse: (status) => {
      refusing = status;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    proxy.tunnels.push(req.url ?? '');
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    if (refusing !== undefined) {
      proxy.refusals++;
      const auth = refusing === 407 ? 'Proxy-Authenticate: Basic realm="plant"\r\n' : '';
      client.end(`HTTP/1.1 ${refusing} ${REASONS[refusing] ?? 'Refused'}\r\n${auth}Content-Length: 0\r\nConnection: close\r\n\r\n`);
      return;
    }
    const i = (req.url ?? '').lastIndexOf(':');
    const host = (req.url ?? '').slice(0, i).replace(/^\[|\]$/g, '');
    const upstream = connect(Number((req.url ?? '').slice(i + 1)), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('close', () => {
      sockets.delete(upstream);
      client.destroy();
    });
    client.on('close', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  proxy.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return proxy;
}
