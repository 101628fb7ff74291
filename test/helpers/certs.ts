/**
 * Throwaway certificates for tests of TLS peers, made with openssl in a temp directory: a
 * self-signed one for 127.0.0.1, or a private CA that issues server and client certificates.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './peers.js';

export interface CertFiles {
  key: Buffer;
  cert: Buffer;
  keyPath: string;
  /** Path of the certificate; of a self-signed one or a CA: what a client trusts (`tls.ca`). */
  certPath: string;
}

export interface SelfSigned extends CertFiles {
  cleanup(): void;
}

export interface CertAuthority extends SelfSigned {
  /** A server certificate for 127.0.0.1 (IP SAN, and DNS localhost) signed by this CA. */
  server(): CertFiles;
  /** A client certificate for CN=`cn` (the name a broker maps to a user) signed by this CA. */
  client(cn: string): CertFiles;
}

const SERVER_NAMES = 'subjectAltName=IP:127.0.0.1,DNS:localhost';

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { stdio: 'ignore' });
}

/** Runs `make(keyPath, certPath)`, then reads `<name>.key` and `<name>.pem` back from `dir`. */
function made(dir: string, name: string, make: (keyPath: string, certPath: string) => void): CertFiles {
  const keyPath = join(dir, `${name}.key`);
  const certPath = join(dir, `${name}.pem`);
  make(keyPath, certPath);
  // Readable by all: Mosquitto, started as root, drops to its own user and still reads its files.
  for (const p of [keyPath, certPath]) chmodSync(p, 0o644);
  return { key: readFileSync(keyPath), cert: readFileSync(certPath), keyPath, certPath };
}

function selfSigned(dir: string, name: string, cn: string, ext: string[]): CertFiles {
  return made(dir, name, (keyPath, certPath) =>
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', `/CN=${cn}`, ...ext, '-keyout', keyPath, '-out', certPath),
  );
}

export function selfSignedCert(): SelfSigned {
  const dir = tempDir('sluice-cert-');
  return { ...selfSigned(dir.path, 'cert', '127.0.0.1', ['-addext', SERVER_NAMES]), cleanup: dir.cleanup };
}

/** A private CA named `cn` in its own temp directory (readable by all, as its files are). */
export function certAuthority(cn = 'sluice-test-ca'): CertAuthority {
  const dir = tempDir('sluice-pki-');
  chmodSync(dir.path, 0o755);
  const ca = selfSigned(dir.path, 'ca', cn, []);
  let issued = 0;
  const issue = (name: string, subject: string, ext: string) =>
    made(dir.path, `${name}-${++issued}`, (keyPath, certPath) => {
      const csr = `${certPath}.csr`;
      const extFile = `${certPath}.ext`;
      writeFileSync(extFile, `${ext}\n`);
      openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${subject}`, '-keyout', keyPath, '-out', csr);
      openssl('x509', '-req', '-in', csr, '-CA', ca.certPath, '-CAkey', ca.keyPath, '-set_serial', String(issued), '-days', '1', '-extfile', extFile, '-out', certPath);
    });
  return {
    ...ca,
    cleanup: dir.cleanup,
    server: () => issue('server', '127.0.0.1', SERVER_NAMES),
    client: (name) => issue('client', name, 'extendedKeyUsage=clientAuth'),
  };
}

/** Mosquitto config lines for a TLS listener with `server`'s certificate that requires a client certificate from `ca`. */
export function mosquittoClientCertTls(ca: CertFiles, server: CertFiles): string {
  return `cafile ${ca.certPath}\ncertfile ${server.certPath}\nkeyfile ${server.keyPath}\nrequire_certificate true\n`;
}
