/** Options of the Kafka uplink: a kafkajs idempotent producer, one record per event keyed by topic (or one contract batch per record). */
import { z } from 'zod';
import { duration, secret, size } from '../../src/core/config-types.js';
import { commonUplinkOptions } from '../common-schema.js';

export const kafkaUplinkSchema = z.strictObject({
  ...commonUplinkOptions,
  type: z.literal('kafka'),
  /** Bootstrap brokers, `host:port`. */
  brokers: z.array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'must be host:port')).min(1),
  /** The Kafka topic every record goes to. */
  topic: z.string().regex(/^[a-zA-Z0-9._-]{1,249}$/, 'is not a valid Kafka topic name'),
  /** Default `sluice-<gateway id>`. */
  clientId: z.string().min(1).optional(),
  /** TLS to the brokers (the `tls` option adds a CA or client certificate). */
  ssl: z.boolean().default(false),
  sasl: z
    .strictObject({
      mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']),
      username: z.string().min(1),
      password: secret(z.string().min(1)),
    })
    .optional(),
  /** Record key for every record; default the event's topic (per event) or the gateway id (aggregate). */
  key: z.string().min(1).optional(),
  /** One contract batch document per record instead of one record per event. */
  aggregate: z.boolean().default(false),
  /** Largest record the brokers take (`message.max.bytes`, 1 MB by default); a larger event is rejected. */
  maxMessageBytes: size().default(1_000_000),
  connectTimeout: duration().default(10_000),
  /** How long the brokers may take to acknowledge (acks = all) before the batch is retried. */
  requestTimeout: duration().default(30_000),
});
export type KafkaUplinkConfig = z.output<typeof kafkaUplinkSchema>;
