/** Options of the system driver: the gateway's own health as events. */
import { z } from 'zod';
import { duration, name, topicName, republishSchema } from '../../src/core/config-types.js';

export const systemSchema = z.strictObject({
  name: name(),
  type: z.literal('system'),
  enabled: z.boolean().default(true),
  /** Also publish each reading on the gateway's own broker, once durable (off unless set). */
  republish: republishSchema.optional(),
  interval: duration().default(60_000),
  /** Readings go to `<topicPrefix>/<metric>` (`cpu_temp`, `load1`, `memory_used`, `disk_free`, ...). */
  topicPrefix: topicName().default('sluice/system'),
  /** The filesystem whose free space is reported; defaults to the gateway's data directory. */
  diskPath: z.string().min(1).optional(),
});

export type SystemConfig = z.output<typeof systemSchema>;
