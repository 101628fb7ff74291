/**
 * A WebSocket front for a TCP server, as Event Hubs' `wss://NS:443/$servicebus/websocket` is a
 * WebSocket front for its AMQP port: each WebSocket connection is piped byte for byte to a fresh TCP
 * connection to `targetPort` (binary messages in, binary messages out), so the peer behind it is the
 * real one (RabbitMQ's AMQP 1.0, or a rhea server). Serves wss with the given key and certificate
 * (ws:// without them), accepts only `path` and, when `protocol` is set, only clients offering it.
 * Records every upgrade it accepted (path and subprotocol) for the tests to check; `cut()` drops the
 * open connections, as a firewall or a hub restart does.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, type Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

export interface WsBridge {
  port: number;
  /** Accepted upgrades: the request path and the subprotocol chosen. */
  upgrades: { path: string; protocol: string }[];
  /** Drops every open connection without a close handshake (the client sees close code 1006). */
  cut(): void;
  close(): Promise<void>;
}

export async function startWsBridge(opts: {
  targetPort: number;
  path: string;
  protocol?: string;
  tls?: { key: Buffer; cert: Buffer };
}): Promise<WsBridge> {
  const server: Server = opts.tls ? createHttpsServer(opts.tls) : createHttpServer();
  const upgrades: WsBridge['upgrades'] = [];
  const open = new Set<WebSocket | Socket>();
  const wss = new WebSocketServer({
    server,
    path: opts.path,
    // A client that does not offer the subprotocol is refused (HTTP 401, ws's answer to a failed verifyClient), as a strict server would.
    verifyClient: ({ req }: { req: IncomingMessage }) =>
      !opts.protocol || String(req.headers['sec-websocket-protocol'] ?? '').split(/\s*,\s*/).includes(opts.protocol),
    handleProtocols: (offered) => opts.protocol ?? [...offered][0] ?? false,
  });
  wss.on('connection', (ws, req) => {
    upgrades.push({ path: req.url ?? '', protocol: ws.protocol });
    const tcp = connect(opts.targetPort, '127.0.0.1');
    open.add(ws).add(tcp);
    // Bytes that arrive before the TCP side is up are queued by the socket itself.
    ws.on('message', (data: Buffer) => tcp.write(data));
    tcp.on('data', (d) => ws.send(d, { binary: true }));
    const end = () => {
      open.delete(ws);
      open.delete(tcp);
      tcp.destroy();
      ws.terminate();
    };
    ws.on('close', end).on('error', end);
    tcp.on('close', end).on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const cut = () => {
    for (const s of open) {
      if ('terminate' in s) s.terminate();
      else s.destroy();
    }
  };
  return {
    port: (server.address() as { port: number }).port,
    upgrades,
    cut,
    close: async () => {
      cut();
      wss.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
