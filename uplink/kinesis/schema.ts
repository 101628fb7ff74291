/** Options of the Kinesis uplink: PutRecords, one record per event keyed by topic (or one contract batch per record). */
import { z } from 'zod';
import { duration, secret } from '../../src/core/config-types.js';
import { commonUplinkOptions, proxySchema } from '../common-schema.js';

export const kinesisUplinkSchema = z
  .strictObject({
    ...commonUplinkOptions,
    type: z.literal('kinesis'),
  /** Outbound proxy (uplink/proxy.ts): a URL, `none`, or unset for HTTPS_PROXY / NO_PROXY. */
  proxy: proxySchema,
    streamName: z.string().regex(/^[a-zA-Z0-9_.-]{1,128}$/, 'must be 1-128 letters, digits, "_", "." or "-"'),
    region: z.string().min(1).default('us-east-1'),
    /** Another endpoint than AWS's (kinesalite, LocalStack, a VPC endpoint). */
    endpoint: z.url().optional(),
    /** Static credentials; without them the AWS default chain (env, profile, instance role) is used. */
    accessKeyId: z.string().min(1).optional(),
    secretAccessKey: secret(z.string().min(1)).optional(),
    sessionToken: secret(z.string().min(1)).optional(),
    /** Partition key for every record; default: the event's topic (so one topic stays in order on one shard). */
    partitionKey: z.string().min(1).max(256).optional(),
    /** One contract batch document per record instead of one record per event (Kinesis bills and throttles per record). */
    aggregate: z.boolean().default(false),
    /** How long one PutRecords call may take before it is abandoned and retried (a peer that never answers). */
    requestTimeout: duration().default(15_000),
    connectTimeout: duration().default(5_000),
  })
  .refine((c) => !c.accessKeyId === !c.secretAccessKey, {
    message: 'accessKeyId and secretAccessKey go together',
    path: ['secretAccessKey'],
  });
export type KinesisUplinkConfig = z.output<typeof kinesisUplinkSchema>;
