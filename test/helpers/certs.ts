/** A throwaway self-signed certificate for 127.0.0.1 (CN and IP SAN), for tests of TLS peers. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './peers.js';

export interface SelfSigned {
  key: Buffer;
  cert: Buffer;
  /** Path of the certificate: the CA a client trusts (`tls.ca`). */
  certPath: string;
  cleanup(): void;
}

export function selfSignedCert(): SelfSigned {
  const dir = tempDir('sluice-cert-');
  const keyPath = join(dir.path, 'key.pem');
  const certPath = join(dir.path, 'cert.pem');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyPath, '-out', certPath],
    { stdio: 'ignore' },
  );
  return { key: readFileSync(keyPath), cert: readFileSync(certPath), certPath, cleanup: dir.cleanup };
}
