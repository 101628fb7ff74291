/**
 * The broker's sockets: TCP, TLS and WebSocket listeners, and the connection bound.
 *
 * Guarantees:
 * - every socket counts against `maxConnections` from the moment it is accepted (before a TLS
 *   handshake or a WebSocket upgrade); one past the bound is closed at once, counted;
 * - a TLS handshake or a WebSocket upgrade must complete within the connect timeout;
 * - a port in use (or not allowed) is one sentence naming the port and the key that moves it.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { createWebSocketStream, WebSocketServer } from 'ws';
import type { BrokerConfig } from './schema.js';

type Listener = BrokerConfig['listeners'][number];

export interface ListenerOptions {
  maxConnections: number;
  connectTimeoutMs: number;
  /** Largest WebSocket message accepted (one MQTT packet). */
  maxPacketBytes: number;
  /** A socket admitted under the bound, once it speaks MQTT (after TLS or the WebSocket upgrade). */
  onConnection(conn: Socket | TLSSocket, req?: IncomingMessage): void;
  /** A socket refused because `maxConnections` sockets are open. */
  onRefused(): void;
  /** Logged once per listener when it listens. */
  onListening(listener: Listener): void;
}

export class Listeners {
  private servers: Server[] = [];
  private connections = 0;
  private closing = false;

  constructor(private readonly opts: ListenerOptions) {}

  get count(): number {
    return this.connections;
  }

  get listening(): boolean {
    return this.servers.length > 0 && this.servers.every((s) => s.listening);
  }

  get addresses(): { host: string; port: number }[] {
    return this.servers.map((s) => {
      const a = s.address() as { address: string; port: number };
      return { host: a.address, port: a.port };
    });
  }

  async start(listeners: Listener[]): Promise<void> {
    for (const listener of listeners) {
      const server = await this.create(listener);
      // Counted from the TCP accept, before any TLS handshake or HTTP upgrade.
      server.prependListener('connection', (sock: Socket) => this.admit(sock));
      await listen(server, listener.host, listener.port);
      this.servers.push(server);
      this.opts.onListening(listener);
    }
  }

  async stop(): Promise<void> {
    this.closing = true;
    const servers = this.servers;
    this.servers = [];
    await Promise.all(
      servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            (s as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
          }),
      ),
    );
  }

  private async create(listener: Listener): Promise<Server> {
    const onConnection = (conn: Socket | TLSSocket, req?: IncomingMessage) => this.opts.onConnection(conn, req);
    const timeout = this.opts.connectTimeoutMs;
    if (listener.ws) {
      const http = listener.tls ? (await import('node:https')).createServer(tlsOptions(listener.tls)) : createHttpServer();
      // Until the upgrade: an idle or half-sent request is closed after the connect timeout
      // (the upgraded WebSocket is not subject to it).
      http.timeout = timeout;
      http.headersTimeout = timeout;
      http.requestTimeout = timeout;
      const wss = new WebSocketServer({ server: http, maxPayload: this.opts.maxPacketBytes });
      wss.on('connection', (ws, req) => onConnection(createWebSocketStream(ws) as unknown as Socket, req));
      return http as unknown as Server;
    }
    if (listener.tls) return createTlsServer({ ...tlsOptions(listener.tls), handshakeTimeout: timeout }, onConnection);
    return createNetServer(onConnection);
  }

  /** Every accepted TCP socket, whatever the listener speaks, counts against maxConnections. */
  private admit(sock: Socket): void {
    if (this.closing || this.connections >= this.opts.maxConnections) {
      if (!this.closing) this.opts.onRefused();
      sock.destroy();
      return;
    }
    this.connections++;
    sock.once('close', () => this.connections--);
  }
}

function tlsOptions(tls: { cert: string; key: string; ca?: string; requestCert: boolean }) {
  return {
    cert: readFileSync(tls.cert),
    key: readFileSync(tls.key),
    ca: tls.ca ? readFileSync(tls.ca) : undefined,
    requestCert: tls.requestCert,
    rejectUnauthorized: false, // a client without a certificate may still log in with a password
  };
}

/** Listens, turning EADDRINUSE into one sentence that names the port and the key that moves it. */
function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') {
        reject(
          new PortInUseError(
            `port ${port} on ${host} is already in use (another MQTT broker such as Mosquitto?); move the gateway's broker with broker.listeners[].port in the config`,
          ),
        );
      } else if (err.code === 'EACCES') {
        reject(new PortInUseError(`not allowed to listen on ${host}:${port}; choose another broker.listeners[].port`));
      } else reject(err);
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

export class PortInUseError extends Error {
  readonly code = 'PORT_IN_USE';
}
