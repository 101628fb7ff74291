/** The union of every uplink type's options, keyed by `type` (one schema per sink folder). */
import { z } from 'zod';
import { amqpUplinkSchema } from './amqp/schema.js';
import { eventHubsUplinkSchema } from './eventhubs/schema.js';
import { httpUplinkSchema } from './http/schema.js';
import { kafkaUplinkSchema } from './kafka/schema.js';
import { kinesisUplinkSchema } from './kinesis/schema.js';
import { mqttUplinkSchema } from './mqtt/schema.js';
import { natsUplinkSchema } from './nats/schema.js';
import { s3UplinkSchema } from './s3/schema.js';
import { sparkplugUplinkSchema } from './sparkplug/schema.js';

export const uplinkSchema = z.discriminatedUnion('type', [
  mqttUplinkSchema,
  httpUplinkSchema,
  natsUplinkSchema,
  amqpUplinkSchema,
  eventHubsUplinkSchema,
  kafkaUplinkSchema,
  kinesisUplinkSchema,
  s3UplinkSchema,
  sparkplugUplinkSchema,
]);
export type UplinkConfig = z.output<typeof uplinkSchema>;
