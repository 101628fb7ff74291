/** Options of the MQTT uplink: contract batches at QoS 1 to `<topicPrefix>/<gateway id>/events`. */
import { z } from 'zod';
import { duration } from '../../src/config/types.js';
import { commonUplinkOptions } from '../common-schema.js';

export const mqttUplinkSchema = z.strictObject({
  ...commonUplinkOptions,
  type: z.literal('mqtt'),
  url: z.string().regex(/^(mqtts?|wss?|tcp|ssl):\/\//, 'must be an mqtt://, mqtts://, ws:// or wss:// URL'),
  topicPrefix: z.string().default('sluice'),
  clientId: z.string().optional(),
  username: z.string().optional(),
  password: z.string().optional(),
  keepalive: duration().default(30_000),
  /** PUBACK wait before the batch is retried. */
  ackTimeout: duration().default(10_000),
});
export type MqttUplinkConfig = z.output<typeof mqttUplinkSchema>;
