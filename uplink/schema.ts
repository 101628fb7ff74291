/** The union of every uplink type's options, keyed by `type` (one schema per sink folder). */
import { z } from 'zod';
import { amqpUplinkSchema } from './amqp/schema.js';
import { httpUplinkSchema } from './http/schema.js';
import { mqttUplinkSchema } from './mqtt/schema.js';
import { natsUplinkSchema } from './nats/schema.js';

export const uplinkSchema = z.discriminatedUnion('type', [
  mqttUplinkSchema,
  httpUplinkSchema,
  natsUplinkSchema,
  amqpUplinkSchema,
]);
export type UplinkConfig = z.output<typeof uplinkSchema>;
