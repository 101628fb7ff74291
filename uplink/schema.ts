/** The union of every uplink type's options, keyed by `type` (one schema per sink folder). */
import { z } from 'zod';
import { mqttUplinkSchema } from './mqtt/schema.js';

export const uplinkSchema = z.discriminatedUnion('type', [mqttUplinkSchema]);
export type UplinkConfig = z.output<typeof uplinkSchema>;
