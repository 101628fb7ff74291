/**
 * Where a request comes from: loopback peers and browser pages served from another site. Shared by
 * the broker's WebSocket listener, HTTP ingest, the HTTP API and local consumers.
 *
 * Hosts are compared exactly, never by prefix: `127.0.0.1.evil.example` is a DNS name anyone can
 * register, not a loopback address. Loopback is an IP literal in 127.0.0.0/8, `::1`, an IPv4-mapped
 * `::ffff:127.x.y.z` (dotted or hex), or the name `localhost` (and `*.localhost`, which RFC 6761 and
 * browsers resolve to loopback without asking DNS).
 */
import { isIP } from 'node:net';

/** A peer address or host name on this machine's loopback interface. */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  let a = address.trim().toLowerCase();
  if (a.startsWith('[') && a.endsWith(']')) a = a.slice(1, -1);
  if (a.endsWith('.')) a = a.slice(0, -1); // "localhost." is the same name
  if (a === 'localhost' || a.endsWith('.localhost')) return true;
  const family = isIP(a);
  if (family === 4) return a.startsWith('127.');
  if (family !== 6) return false;
  if (a === '::1' || a === '0:0:0:0:0:0:0:1') return true;
  const mapped = /^(?:0{0,4}:){0,5}:?ffff:(.+)$/.exec(a)?.[1];
  if (!mapped) return false;
  if (isIP(mapped) === 4) return mapped.startsWith('127.');
  // ::ffff:7f00:1 — the hex form URL parsers produce for ::ffff:127.0.0.1
  return /^7f[0-9a-f]{2}:[0-9a-f]{1,4}$/.test(mapped);
}

/** The host of an `Origin` header (URL-parsed, without brackets), or undefined when it has none. */
export function originHost(origin: string): string | undefined {
  try {
    const u = new URL(origin);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
    return u.hostname.replace(/^\[|\]$/g, '');
  } catch {
    return undefined; // "null" (a file or sandboxed page) or garbage
  }
}

/** A request made by a browser page that is not served from this machine. */
export function isForeignWebOrigin(req: { headers?: Record<string, string | string[] | undefined> } | undefined | null): boolean {
  const origin = req?.headers?.origin;
  if (origin === undefined) return false; // not a browser (mqtt.js in Node, MQTT tools, plain TCP)
  const host = originHost(String(origin));
  return host === undefined || !isLoopback(host);
}
