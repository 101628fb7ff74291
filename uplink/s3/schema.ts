/** Options of the S3 uplink: one gzipped NDJSON object per batch, in a date-partitioned data lake layout. */
import { z } from 'zod';
import { duration, secret, size } from '../../src/core/config-types.js';
import { commonUplinkOptions, proxySchema } from '../common-schema.js';

export const s3UplinkSchema = z
  .strictObject({
    ...commonUplinkOptions,
    // Objects, not messages: bigger, slower batches than the other uplinks by default, so a day
    // makes hundreds of objects rather than millions (S3 bills per request; Athena reads fewer files).
    batch: z
      .strictObject({
        maxEvents: z.number().int().min(1).max(100_000).default(50_000),
        maxBytes: size().default(8 * 1024 * 1024),
        maxDelay: duration().default(60_000),
      })
      .prefault({}),
    /** NDJSON objects are gzipped (`.ndjson.gz`) unless this is false (`.ndjson`). */
    gzip: z.boolean().default(true),
    type: z.literal('s3'),
  /** Outbound proxy (uplink/proxy.ts): a URL, `none`, or unset for HTTPS_PROXY / NO_PROXY. */
  proxy: proxySchema,
    bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'is not a valid S3 bucket name'),
    /** Key prefix; objects land at `<prefix>/<gateway id>/YYYY/MM/DD/HH/<batchId>.ndjson.gz`. */
    prefix: z
      .string()
      .default('sluice')
      .transform((p) => p.replace(/^\/+|\/+$/g, '')),
    region: z.string().min(1).default('us-east-1'),
    /** Another endpoint than AWS's (MinIO, Ceph, s3rver, a VPC endpoint). */
    endpoint: z.url().optional(),
    /** `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key` (MinIO and most S3 clones need it). */
    forcePathStyle: z.boolean().default(false),
    /** Static credentials; without them the AWS default chain (env, profile, instance role) is used. */
    accessKeyId: z.string().min(1).optional(),
    secretAccessKey: secret(z.string().min(1)).optional(),
    sessionToken: secret(z.string().min(1)).optional(),
    storageClass: z.enum(['STANDARD', 'STANDARD_IA', 'ONEZONE_IA', 'INTELLIGENT_TIERING', 'GLACIER_IR']).optional(),
    /** How long one PutObject may take before it is abandoned and retried (a peer that never answers). */
    requestTimeout: duration().default(60_000),
    connectTimeout: duration().default(5_000),
  })
  .refine((c) => !c.accessKeyId === !c.secretAccessKey, {
    message: 'accessKeyId and secretAccessKey go together',
    path: ['secretAccessKey'],
  });
export type S3UplinkConfig = z.output<typeof s3UplinkSchema>;
