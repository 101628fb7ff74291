/** The union of every uplink type's options, keyed by `type`: one schema per sink folder, listed in uplink/registry.ts. */
import { z } from 'zod';
import { type SinkSchema, sinks } from './registry.js';

export const uplinkSchema = z.discriminatedUnion('type', Object.values(sinks).map((s) => s.schema) as [SinkSchema, ...SinkSchema[]]);
export type UplinkConfig = z.output<typeof uplinkSchema>;
