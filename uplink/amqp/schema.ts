/** Options of the AMQP 0-9-1 uplink (RabbitMQ): contract batches published with publisher confirms. */
import { z } from 'zod';
import { duration } from '../../src/core/config-types.js';
import { commonUplinkOptions } from '../common-schema.js';

export const amqpUplinkSchema = z.strictObject({
  ...commonUplinkOptions,
  type: z.literal('amqp'),
  /** `amqp://user:pass@host:5672/vhost` or `amqps://...` (TLS options under `tls`). */
  url: z.string().regex(/^amqps?:\/\/[^\s]+$/, 'must be an amqp:// or amqps:// URL'),
  /** Exchange to publish to ('' is the default exchange, which routes by queue name). */
  exchange: z.string().default('amq.topic'),
  /** Routing key; `{gateway}` is replaced by the gateway id. */
  routingKey: z.string().default('sluice.{gateway}.events'),
  /** Declare the exchange at connect (idempotent; fails if it exists with another type). */
  declareExchange: z
    .strictObject({
      type: z.enum(['direct', 'topic', 'fanout', 'headers']).default('topic'),
      durable: z.boolean().default(true),
    })
    .optional(),
  /** Unroutable batches (no queue bound) are returned by the broker and retried instead of vanishing. */
  mandatory: z.boolean().default(true),
  /** Delivery mode 2: the broker writes the batch to disk in durable queues. */
  persistent: z.boolean().default(true),
  heartbeat: duration().default(30_000),
  /** Publisher-confirm wait before the batch is retried (the connection is then re-made). */
  ackTimeout: duration().default(10_000),
});
export type AmqpUplinkConfig = z.output<typeof amqpUplinkSchema>;
