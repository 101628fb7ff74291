/**
 * Outbound proxies for the uplinks that speak HTTP or WebSocket (http, s3, kinesis, mqtt over
 * ws/wss): a per-uplink `proxy:` URL, else the standard environment (`HTTPS_PROXY`, `HTTP_PROXY`,
 * `ALL_PROXY` and `NO_PROXY`, lower case too, read by proxy-from-env, as curl does), else direct.
 * `proxy: none` turns the environment off for one uplink.
 *
 * Every target, http or https, goes through an HTTP CONNECT tunnel (https-proxy-agent): TLS to the
 * cloud stays end to end (the proxy sees only the host name), and a plain-http target is tunnelled
 * the same way. The target's TLS options (a private CA, a client certificate) apply inside the
 * tunnel. Proxy credentials go in the URL (`http://user:pass@proxy:3128`) and are never logged.
 */
import type { Agent } from 'node:http';
import { isIP } from 'node:net';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { getProxyForUrl } from 'proxy-from-env';
import type { LoadedTls } from './tls.js';

/** The proxy URL for `target` (http(s):// or ws(s)://), or undefined for a direct connection. */
export function proxyUrlFor(target: string, setting?: string): string | undefined {
  if (setting === 'none') return undefined;
  if (setting) return setting;
  return getProxyForUrl(target.replace(/^wss:/i, 'https:').replace(/^ws:/i, 'http:')) || undefined;
}

/** An agent that tunnels to `target` through its proxy, or undefined when none applies. */
export function proxyAgentFor(target: string, setting?: string, tls?: LoadedTls): Agent | undefined {
  const proxy = proxyUrlFor(target, setting);
  if (!proxy) return undefined;
  return new TunnelAgent(proxy, tls);
}

/**
 * https-proxy-agent takes the target's TLS options from each request, not from the agent (its
 * constructor options are for the connection to the proxy); clients such as the AWS SDK and ws set
 * them on the agent, so they are added to every request here.
 */
class TunnelAgent extends HttpsProxyAgent<string> {
  constructor(
    proxy: string,
    private readonly targetTls?: LoadedTls,
  ) {
    super(proxy, { keepAlive: true });
  }

  override connect(req: Parameters<HttpsProxyAgent<string>['connect']>[0], opts: Parameters<HttpsProxyAgent<string>['connect']>[1]) {
    const host = opts.host ?? '';
    // An IP target gets no SNI name, and the tunnel drops `host`: check the certificate against the IP.
    const identity = isIP(host) ? { checkServerIdentity: (_name: string, cert: PeerCertificate) => checkServerIdentity(host, cert) } : {};
    return super.connect(req, { ...opts, ...identity, ...(this.targetTls ?? {}) });
  }
}

/** The proxy's host and port, for a reachability probe (never its credentials). */
export function proxyAddress(proxy: string): { host: string; port: number } {
  const u = new URL(proxy);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port) || (u.protocol === 'https:' ? 443 : 80) };
}

/** A proxy URL without its credentials, for logs and status. */
export function redactProxy(proxy: string): string {
  const u = new URL(proxy);
  u.username = '';
  u.password = '';
  return u.toString();
}
