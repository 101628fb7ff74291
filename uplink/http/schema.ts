/** Options of the HTTP uplink: contract batches POSTed to an HTTP(S) ingest endpoint. */
import { z } from 'zod';
import { duration, secret } from '../../src/core/config-types.js';
import { commonUplinkOptions, proxySchema } from '../common-schema.js';

export const httpUplinkSchema = z.strictObject({
  ...commonUplinkOptions,
  type: z.literal('http'),
  /** Outbound proxy (uplink/proxy.ts): a URL, `none`, or unset for HTTPS_PROXY / NO_PROXY. */
  proxy: proxySchema,
  url: z.string().regex(/^https?:\/\/[^\s/]+/, 'must be an http:// or https:// URL'),
  method: z.enum(['POST', 'PUT']).default('POST'),
  /** Extra request headers (e.g. an API key header). */
  headers: z.record(z.string(), secret(z.string())).default({}),
  /** Sent as `Authorization: Bearer <token>`. */
  bearerToken: secret(z.string()).optional(),
  /**
   * On a 4xx that refuses the batch (400, 422, ...), bisect it to dead-letter only the refused events
   * (about 2·log2(n) extra requests per refused event); false dead-letters the whole batch.
   */
  isolateRejects: z.boolean().default(true),
  /** Time allowed for the whole request (connect, upload, response). */
  timeout: duration().default(30_000),
});
export type HttpUplinkConfig = z.output<typeof httpUplinkSchema>;
