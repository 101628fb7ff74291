/** Options of the serial line driver. */
import { z } from 'zod';
import { name, topicName } from '../../src/config/types.js';

export const serialSchema = z.strictObject({
  name: name(),
  type: z.literal('serial'),
  enabled: z.boolean().default(true),
  path: z.string().min(1),
  baudRate: z.number().int().positive().default(9600),
  format: z.enum(['lines', 'json-lines', 'nmea']).default('lines'),
  topic: topicName(),
});
