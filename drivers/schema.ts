/** The union of every driver type's options, keyed by `type`: one schema per driver folder, listed in drivers/registry.ts. */
import { z } from 'zod';
import { type DriverSchema, drivers } from './registry.js';

export const driverSchema = z.discriminatedUnion('type', Object.values(drivers).map((d) => d.schema) as [DriverSchema, ...DriverSchema[]]);
export type DriverConfig = z.output<typeof driverSchema>;
