/** The union of every driver type's options, keyed by `type` (one schema per driver folder). */
import { z } from 'zod';
import { modbusRtuSchema, modbusTcpSchema } from './modbus/schema.js';
import { opcuaSchema } from './opcua/schema.js';
import { serialSchema } from './serial/schema.js';
import { simulatorSchema } from './simulator/schema.js';
import { systemSchema } from './system/schema.js';

export const driverSchema = z.discriminatedUnion('type', [
  modbusTcpSchema,
  modbusRtuSchema,
  opcuaSchema,
  serialSchema,
  simulatorSchema,
  systemSchema,
]);
export type DriverConfig = z.output<typeof driverSchema>;
