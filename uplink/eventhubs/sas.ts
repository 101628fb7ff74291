/**
 * Shared Access Signature tokens for Azure Service Bus / Event Hubs: an HMAC-SHA256, with the
 * shared access key, over the URL-encoded resource URI and the expiry (seconds since the epoch).
 * The key is used as its literal (base64) text, as Azure does, not decoded.
 */
import { createHmac } from 'node:crypto';

export function buildSasToken(audience: string, keyName: string, key: string, expiresAtSec: number): string {
  const sr = encodeURIComponent(audience);
  const sig = createHmac('sha256', key).update(`${sr}\n${expiresAtSec}`).digest('base64');
  return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=${expiresAtSec}&skn=${encodeURIComponent(keyName)}`;
}

/** The expiry (`se`, epoch seconds) of a token, or undefined when it carries none. */
export function sasTokenExpiry(token: string): number | undefined {
  const m = /[?&\s]se=(\d+)/.exec(token);
  return m ? Number(m[1]) : undefined;
}
