/** Options of the MQTT uplink: contract batches at QoS 1 to `<topicPrefix>/<gateway id>/events`. */
import { z } from 'zod';
import { duration, secret, size } from '../../src/core/config-types.js';
import { commonUplinkOptions, proxySchema } from '../common-schema.js';

export const mqttUplinkSchema = z.strictObject({
  ...commonUplinkOptions,
  type: z.literal('mqtt'),
  /** Outbound proxy (uplink/proxy.ts): a URL, `none`, or unset for HTTPS_PROXY / NO_PROXY. */
  proxy: proxySchema,
  url: z.string().regex(/^(mqtts?|wss?|tcp|ssl):\/\//, 'must be an mqtt://, mqtts://, ws:// or wss:// URL'),
  topicPrefix: z
    .string()
    .default('sluice')
    .refine((t) => !/[+#\u0000]/.test(t), { message: 'must not contain + or #' }),
  clientId: z.string().optional(),
  username: z.string().optional(),
  password: secret(z.string()).optional(),
  /** 4 = MQTT 3.1.1, 5 = MQTT 5 (adds a content type to each batch). */
  protocolVersion: z.union([z.literal(4), z.literal(5)]).default(4),
  keepalive: duration().default(30_000),
  /** Time allowed for the TCP/TLS connect and CONNACK. */
  connectTimeout: duration().default(15_000),
  /**
   * Largest PUBLISH the broker takes (e.g. AWS IoT Core: 128KB); bigger batches are split. MQTT 5
   * brokers announce theirs, which is used as well.
   */
  maxMessageBytes: size().optional(),
  /** PUBACK wait before the batch is retried (the connection is then dropped and re-made). */
  ackTimeout: duration().default(10_000),
});
export type MqttUplinkConfig = z.output<typeof mqttUplinkSchema>;
