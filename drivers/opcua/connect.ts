/**
 * An OPC UA client for one endpoint, as the driver and `sluice opcua browse` open it: the security
 * mode and policy, the user identity, and the certificate store. The client's own certificate is
 * made on first use in `<pki>/own/` and kept; a server certificate is checked against
 * `<pki>/trusted/certs/`; an unknown one is copied to `<pki>/rejected/` and refused, and an operator
 * trusts it by moving it to `trusted/certs/`.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OPCUACertificateManager } from 'node-opcua-certificate-manager';
import {
  MessageSecurityMode,
  OPCUAClient,
  SecurityPolicy,
  type UserIdentityInfo,
  UserTokenType,
} from 'node-opcua-client';
import type { OpcuaConfig } from './schema.js';

export type ConnectOptions = Pick<
  OpcuaConfig,
  'endpoint' | 'security' | 'identity' | 'acceptUnknownServerCertificate' | 'timeout' | 'maxBackoff'
> & { pkiDir: string };

/**
 * A fresh view of the store for each connection attempt, so a certificate the operator just moved
 * to `trusted/certs/` counts at the next attempt (no file watchers to rely on).
 */
async function certificateManager(dir: string, acceptUnknown: boolean): Promise<OPCUACertificateManager> {
  const m = new OPCUACertificateManager({
    rootFolder: dir,
    automaticallyAcceptUnknownCertificate: acceptUnknown,
    disableFileWatchers: true,
  } as ConstructorParameters<typeof OPCUACertificateManager>[0]);
  await m.initialize();
  return m;
}

export function pkiDirOf(config: Pick<OpcuaConfig, 'pkiDir'>, dataDir: string | undefined): string {
  return config.pkiDir ?? join(dataDir ?? '.', 'opcua-pki');
}

/**
 * A client that reconnects by itself once connected (backing off up to `maxBackoff`), and whose
 * first `connect` gives up after one attempt, so the driver counts and paces first attempts.
 */
export async function createClient(o: ConnectOptions): Promise<{ client: OPCUAClient; certificates: OPCUACertificateManager }> {
  const mode = MessageSecurityMode[o.security.mode];
  const policy = o.security.policy ?? (o.security.mode === 'None' ? 'None' : 'Basic256Sha256');
  const certificates = await certificateManager(o.pkiDir, o.acceptUnknownServerCertificate);
  const client = OPCUAClient.create({
    applicationName: 'Sluice',
    applicationUri: 'urn:sluice:gateway',
    clientCertificateManager: certificates,
    securityMode: mode,
    securityPolicy: SecurityPolicy[policy],
    endpointMustExist: false,
    keepSessionAlive: true,
    requestedSessionTimeout: 60_000,
    defaultTransactionTimeout: o.timeout,
    transportTimeout: o.timeout,
    connectionStrategy: { initialDelay: 500, maxDelay: o.maxBackoff, maxRetry: 1, randomisationFactor: 0.2 },
  });
  return { client, certificates };
}

/** After the first connection, reconnection retries for as long as the driver runs. */
export function retryForever(client: OPCUAClient, maxBackoff: number): void {
  const s = client.connectionStrategy as { maxRetry: number; maxDelay: number };
  s.maxRetry = 1_000_000_000;
  s.maxDelay = maxBackoff;
}

export function userIdentity(identity: OpcuaConfig['identity']): UserIdentityInfo {
  switch (identity.type) {
    case 'anonymous':
      return { type: UserTokenType.Anonymous };
    case 'username':
      return {
        type: UserTokenType.UserName,
        userName: identity.username,
        password: identity.password ?? readFileSync(identity.passwordFile!, 'utf8').trimEnd(),
      };
    case 'certificate': {
      const raw = readFileSync(identity.certificate);
      const der = raw.toString('latin1').includes('-----BEGIN') ? new X509Certificate(raw).raw : raw;
      return {
        type: UserTokenType.Certificate,
        certificateData: der,
        privateKey: readFileSync(identity.privateKey, 'utf8'),
      };
    }
  }
}

/** One sentence for a failed connection, with the operator's next step where there is one. */
export function explainConnectError(err: unknown, pkiDir: string): { reason: string; message: string } {
  const msg = (err as Error)?.message ?? String(err);
  if (/certificate/i.test(msg) && /(untrusted|reject|BadCertificate|not trusted|invalid)/i.test(msg))
    return {
      reason: 'certificate',
      message: `the server certificate is not trusted: move it from ${pkiDir}/rejected/ to ${pkiDir}/trusted/certs/ after checking its fingerprint (${firstLine(msg)})`,
    };
  if (/BadIdentityToken|BadUserAccessDenied/i.test(msg))
    return { reason: 'identity', message: `the server refused the user identity (${firstLine(msg)})` };
  if (/BadSecurity|security policy|SecurityMode/i.test(msg))
    return { reason: 'security', message: `the server refused the security mode or policy (${firstLine(msg)})` };
  return { reason: 'connect', message: firstLine(msg) };
}

function firstLine(s: string): string {
  return s.split('\n')[0].slice(0, 300);
}
