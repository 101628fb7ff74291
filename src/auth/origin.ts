/**
 * Where a request comes from: loopback peers and browser pages served from another site. Shared by
 * the broker's WebSocket listener, HTTP ingest, the HTTP API and local consumers.
 */

const LOOPBACK = /^(127\.|::1$|::ffff:127\.)/;

/** A peer address or host name on this machine's loopback interface. */
export function isLoopback(address: string | undefined): boolean {
  return address !== undefined && (LOOPBACK.test(address) || address === 'localhost');
}

/** A request made by a browser page that is not served from this machine. */
export function isForeignWebOrigin(req: { headers?: Record<string, string | string[] | undefined> } | undefined | null): boolean {
  const origin = req?.headers?.origin;
  if (origin === undefined) return false; // not a browser (mqtt.js in Node, MQTT tools, plain TCP)
  try {
    const host = new URL(String(origin)).hostname.replace(/^\[|\]$/g, '');
    return !isLoopback(host);
  } catch {
    return true; // "null" (a file or sandboxed page) or garbage
  }
}
