/** Options of the NATS uplink: contract batches published to JetStream, deduplicated by batchId. */
import { z } from 'zod';
import { duration, secret } from '../../src/core/config-types.js';
import { commonUplinkOptions } from '../common-schema.js';

export const natsUplinkSchema = z.strictObject({
  ...commonUplinkOptions,
  type: z.literal('nats'),
  servers: z
    .array(z.string().regex(/^(nats|tls|wss?):\/\/[^\s]+$/, 'must be a nats://, tls:// or ws(s):// URL'))
    .min(1),
  /** Subject each batch is published to; a JetStream stream must capture it. */
  subject: z
    .string()
    .min(1)
    .refine((s) => !/[\s*>]/.test(s), { message: 'must be a subject without wildcards or spaces' }),
  user: z.string().optional(),
  pass: z.string().optional(),
  token: secret(z.string()).optional(),
  /** Path to a NATS `.creds` file (JWT + NKey seed). */
  credsFile: z.string().optional(),
  /** PubAck wait before the batch is retried. */
  ackTimeout: duration().default(10_000),
  /** Create the stream (capturing `subject`) when it does not exist, e.g. on a private NATS server. */
  stream: z
    .strictObject({
      name: z.string().regex(/^[^\s.*>]+$/, 'must be a stream name without spaces, ".", "*" or ">"'),
      create: z.boolean().default(false),
      /** The stream's dedupe window for `Nats-Msg-Id` (JetStream's default is 2m). */
      duplicateWindow: duration().default(120_000),
    })
    .optional(),
});
export type NatsUplinkConfig = z.output<typeof natsUplinkSchema>;
