/**
 * AMQP 1.0 over WebSocket for the Event Hubs uplink, as the Azure SDKs run it where only HTTPS may
 * leave the plant: `wss://<namespace>:443/$servicebus/websocket`, subprotocol `AMQPWSB10`, the AMQP
 * bytes in binary WebSocket messages (rhea's `websocket_connect` does the framing). Behind an outbound
 * proxy (uplink/proxy.ts: the uplink's `proxy:`, else HTTPS_PROXY/NO_PROXY) the WebSocket runs in an
 * HTTP CONNECT tunnel, so TLS to the hub stays end to end and SASL/CBS are unchanged inside it.
 *
 * One dialer per connection attempt: it remembers what went wrong with its socket, so the uplink can
 * say whether the proxy refused the tunnel, the proxy was unreachable, or the hub refused the upgrade.
 */
import type { Agent } from 'node:http';
import type { Container } from 'rhea';
import WebSocket from 'ws';
import { proxyAgentFor, proxyUrlFor, redactProxy } from '../proxy.js';
import type { LoadedTls } from '../tls.js';

export const WS_PATH = '/$servicebus/websocket';
export const WS_PROTOCOL = 'AMQPWSB10';
export type Transport = 'tls' | 'tcp' | 'websocket';

/** The port each transport listens on at Event Hubs (tcp: a local AMQP 1.0 peer). */
export const DEFAULT_PORT: Record<Transport, number> = { tls: 5671, tcp: 5672, websocket: 443 };

export function webSocketUrl(host: string, port: number): string {
  return `wss://${host.includes(':') ? `[${host}]` : host}:${port}${WS_PATH}`;
}

/**
 * The transport in use: the configured one; unset, WebSocket when a proxy applies to the hub (a
 * `proxy:` URL, or HTTPS_PROXY not excluded by NO_PROXY), since a proxy passes nothing else; else tls.
 */
export function resolveTransport(c: { transport?: Transport; proxy?: string; port?: number }, host: string): Transport {
  if (c.transport) return c.transport;
  return proxyUrlFor(webSocketUrl(host, c.port ?? DEFAULT_PORT.websocket), c.proxy) ? 'websocket' : 'tls';
}

/** rhea's connection_details: a function that opens the socket, called once per connect. */
type ConnectionDetails = () => { connect(port: number, host: string, options: unknown, cb: () => void): unknown };

export class WebSocketDialer {
  /** The proxy the tunnel goes through, or undefined for a direct WebSocket. */
  readonly proxy?: string;
  private readonly agent?: Agent;
  private socket?: WebSocket;
  private opened = false;
  private refused?: string;
  private error?: NodeJS.ErrnoException;
  private closeCode?: number;

  constructor(
    private readonly container: Container,
    readonly url: string,
    proxySetting: string | undefined,
    private readonly tls: LoadedTls | undefined,
    private readonly handshakeTimeout: number,
  ) {
    this.proxy = proxyUrlFor(url, proxySetting);
    this.agent = this.proxy ? proxyAgentFor(url, this.proxy, tls) : undefined;
    // https-proxy-agent reports the proxy's answer to CONNECT here, before the upgrade fails on it.
    this.agent?.on('proxyConnect', (res: { statusCode: number; statusText?: string }) => {
      if (res.statusCode !== 200) this.refused = `${res.statusCode}${res.statusText ? ` ${res.statusText}` : ''}`;
    });
  }

  /** The `connection_details` option of rhea's connect. */
  details(): ConnectionDetails {
    const options: Record<string, unknown> = { handshakeTimeout: this.handshakeTimeout };
    if (this.agent) options.agent = this.agent;
    for (const [k, v] of Object.entries(this.tls ?? {})) if (v !== undefined) options[k] = v;
    // A WebSocket class that hands its instance to this dialer: rhea's wrapper hides the socket, and
    // the dialer needs it to terminate a dead one and to read why it failed.
    const attach = (ws: WebSocket) => this.attach(ws);
    class Tracked extends WebSocket {
      constructor(address: string, protocols: string[], opts: WebSocket.ClientOptions) {
        super(address, protocols, opts);
        attach(this);
      }
    }
    const connect = (this.container as unknown as { websocket_connect(impl: unknown): (...a: unknown[]) => ConnectionDetails })
      .websocket_connect(Tracked);
    return connect(this.url, [WS_PROTOCOL], options);
  }

  private attach(ws: WebSocket): void {
    this.socket = ws;
    // Registered before rhea's own handlers, so why() knows the cause when rhea reports the disconnect.
    ws.on('open', () => {
      this.opened = true;
    });
    ws.on('error', (err: NodeJS.ErrnoException) => {
      this.error ??= err;
    });
    ws.on('close', (code: number) => {
      this.closeCode = code;
    });
  }

  /** Why the socket failed, in one sentence, or undefined when nothing went wrong with it. */
  why(): string | undefined {
    const target = new URL(this.url).host;
    const via = this.proxy ? redactProxy(this.proxy) : undefined;
    if (this.refused) {
      const hint = this.refused.startsWith('407') ? ': it wants credentials, which go in the proxy URL' : '';
      return `the proxy ${via} refused the tunnel to ${target} (${this.refused})${hint}`;
    }
    const e = this.error;
    if (e?.code && /^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|ECONNRESET)$/.test(e.code) && !this.opened)
      return via ? `cannot reach the proxy ${via} (${e.code})` : `cannot reach ${target} (${e.code})`;
    const upgrade = /Unexpected server response: (\d+)/.exec(e?.message ?? '');
    if (upgrade) return `${this.url} refused the WebSocket upgrade (HTTP ${upgrade[1]})`;
    if (e) return `WebSocket to ${this.url}${via ? ` through ${via}` : ''}: ${e.message}`;
    if (this.opened && this.closeCode !== undefined)
      return `lost the WebSocket connection to ${target} (close code ${this.closeCode})`;
    return undefined;
  }

  /** Drops the socket at once, without a close handshake (for a peer that may never answer one). */
  destroy(): void {
    this.socket?.terminate();
  }
}
