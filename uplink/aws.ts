/**
 * What the AWS-SDK sinks (kinesis, s3) configure alike: static credentials when given (else the
 * SDK's default chain), no SDK-level retries (the runner retries, with its own backoff), and an
 * HTTP/1.1 handler with connect and request timeouts, since the SDK's default handler has no
 * request timeout (a blackholed peer would hang a batch) and emulators such as kinesalite speak
 * no HTTP/2. A private CA or client certificate comes from the common `tls` option; an outbound
 * proxy from `proxy:` or HTTPS_PROXY/NO_PROXY (uplink/proxy.ts).
 */
import { Agent as HttpsAgent } from 'node:https';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { proxyAgentFor } from './proxy.js';
import { loadTls } from './tls.js';
import type { TlsOptions } from './common-schema.js';

export interface AwsSinkOptions {
  name: string;
  region: string;
  endpoint?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  connectTimeout: number;
  requestTimeout: number;
  tls?: TlsOptions;
  /** `proxy:` of the uplink (uplink/proxy.ts). */
  proxy?: string;
}

export function awsClientOptions(c: AwsSinkOptions) {
  const tls = loadTls(c.tls, c.name);
  // The SDK's endpoint, or the regional AWS one the SDK would use (the proxy choice needs a URL; NO_PROXY matches on it).
  const target = c.endpoint ?? `https://${c.region}.amazonaws.com`;
  const tunnel = proxyAgentFor(target, c.proxy, tls);
  return {
    region: c.region,
    endpoint: c.endpoint,
    credentials:
      c.accessKeyId && c.secretAccessKey
        ? { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, sessionToken: c.sessionToken }
        : undefined,
    maxAttempts: 1,
    requestHandler: new NodeHttpHandler({
      connectionTimeout: c.connectTimeout,
      requestTimeout: c.requestTimeout,
      throwOnRequestTimeout: true,
      httpsAgent: tunnel ?? (tls ? new HttpsAgent({ keepAlive: true, ...tls }) : undefined),
      httpAgent: tunnel,
    }),
  };
}
