/**
 * What the AWS-SDK sinks (kinesis, s3) configure alike: static credentials when given (else the
 * SDK's default chain), no SDK-level retries (the runner retries, with its own backoff), and an
 * HTTP/1.1 handler with connect and request timeouts, since the SDK's default handler has no
 * request timeout (a blackholed peer would hang a batch) and emulators such as kinesalite speak
 * no HTTP/2. A private CA or client certificate comes from the common `tls` option.
 */
import { Agent as HttpsAgent } from 'node:https';
import { NodeHttpHandler } from '@smithy/node-http-handler';
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
}

export function awsClientOptions(c: AwsSinkOptions) {
  const tls = loadTls(c.tls, c.name);
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
      httpsAgent: tls ? new HttpsAgent({ keepAlive: true, ...tls }) : undefined,
    }),
  };
}
