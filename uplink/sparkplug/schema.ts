/**
 * Options of the Sparkplug B uplink: the gateway is an edge node (`groupId`/`edgeNode`) toward a
 * Sparkplug host application (Ignition, HiveMQ, Cirrus Link) over MQTT.
 */
import { z } from 'zod';
import { duration, secret, topicFilter } from '../../src/core/config-types.js';
import { commonUplinkOptions } from '../common-schema.js';

/** Sparkplug IDs (group, edge node, device) may not contain MQTT separators or wildcards. */
const sparkplugId = () =>
  z
    .string()
    .min(1)
    .max(128)
    .refine((s) => !/[/+#\u0000]/.test(s), { message: 'must not contain "/", "+" or "#"' });

export const sparkplugUplinkSchema = z.strictObject({
  ...commonUplinkOptions,
  type: z.literal('sparkplug'),
  url: z.string().regex(/^(mqtts?|wss?|tcp|ssl):\/\//, 'must be an mqtt://, mqtts://, ws:// or wss:// URL'),
  groupId: sparkplugId(),
  /** The edge node id; the gateway id when unset. */
  edgeNode: sparkplugId().optional(),
  /**
   * Which device an event belongs to: the first entry whose topic filter matches names it. Events
   * that match none go to a device named after their source (the driver's name, `mqtt`, `http`).
   */
  devices: z.array(z.strictObject({ name: sparkplugId(), match: topicFilter() })).default([]),
  clientId: z.string().optional(),
  username: z.string().optional(),
  password: secret(z.string()).optional(),
  /**
   * QoS of births and data. Sparkplug asks for 0; 1 (the default) keeps the at-least-once promise
   * of every other uplink: a batch counts as delivered only when the broker acknowledged it.
   */
  qos: z.union([z.literal(0), z.literal(1)]).default(1),
  /** DDATA metrics carry only their alias (the birth certificate names them): smaller messages. */
  aliases: z.boolean().default(true),
  /** Metrics the node keeps a birth certificate for, over all devices; events for more are refused. */
  maxMetrics: z.number().int().min(1).max(100_000).default(10_000),
  keepalive: duration().default(30_000),
  connectTimeout: duration().default(15_000),
  /** PUBACK wait before the batch is retried (the connection is then dropped and re-made). */
  ackTimeout: duration().default(10_000),
});
export type SparkplugUplinkConfig = z.output<typeof sparkplugUplinkSchema>;
