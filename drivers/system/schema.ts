/** Options of the system driver: the gateway's own health as events. */
import { z } from 'zod';
import { duration, name, topicName } from '../../src/config/types.js';

export const systemSchema = z.strictObject({
  name: name(),
  type: z.literal('system'),
  enabled: z.boolean().default(true),
  interval: duration().default(60_000),
  topicPrefix: topicName().default('sluice/system'),
});
