/** Loads an uplink's TLS files (CA, client certificate and key) with a clear sentence when one is missing. */
import { readFileSync } from 'node:fs';
import type { TlsOptions } from './common-schema.js';

export interface LoadedTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  passphrase?: string;
  servername?: string;
  rejectUnauthorized: boolean;
}

export function loadTls(tls: TlsOptions, uplink: string): LoadedTls | undefined {
  if (!tls) return undefined;
  const read = (key: 'ca' | 'cert' | 'key') => {
    const path = tls[key];
    if (path === undefined) return undefined;
    try {
      return readFileSync(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
      throw new Error(`uplinks.${uplink}.tls.${key}: cannot read "${path}" (${code})`);
    }
  };
  return {
    ca: read('ca'),
    cert: read('cert'),
    key: read('key'),
    passphrase: tls.passphrase,
    servername: tls.servername,
    rejectUnauthorized: tls.rejectUnauthorized,
  };
}
