/**
 * The driver registry: one line per driver type, `{schema, load}`. The schema joins the config
 * union (drivers/schema.ts); `load` imports the driver's code lazily, so modbus-serial and
 * serialport (native bindings) and node-opcua load only on a gateway that uses them. To add a type:
 * a folder with `schema.ts`, `index.ts` and a README, and one line here.
 */
import type { z } from 'zod';
import type { Driver } from './driver.js';
import { modbusRtuSchema, modbusTcpSchema } from './modbus/schema.js';
import { opcuaSchema } from './opcua/schema.js';
import { serialSchema } from './serial/schema.js';
import { simulatorSchema } from './simulator/schema.js';
import { systemSchema } from './system/schema.js';

export interface DriverPlugin<S extends z.ZodType = z.ZodType> {
  schema: S;
  /** The driver's constructor, imported on first use. */
  load(): Promise<(config: z.output<S>) => Driver>;
}

const plugin = <S extends z.ZodType>(p: DriverPlugin<S>) => p;

export const drivers = {
  'modbus-tcp': plugin({ schema: modbusTcpSchema, load: async () => { const { ModbusDriver } = await import('./modbus/index.js'); return (c) => new ModbusDriver(c); } }),
  'modbus-rtu': plugin({ schema: modbusRtuSchema, load: async () => { const { ModbusDriver } = await import('./modbus/index.js'); return (c) => new ModbusDriver(c); } }),
  opcua: plugin({ schema: opcuaSchema, load: async () => { const { OpcuaDriver } = await import('./opcua/index.js'); return (c) => new OpcuaDriver(c); } }),
  serial: plugin({ schema: serialSchema, load: async () => { const { SerialDriver } = await import('./serial/index.js'); return (c) => new SerialDriver(c); } }),
  simulator: plugin({ schema: simulatorSchema, load: async () => { const { SimulatorDriver } = await import('./simulator/index.js'); return (c) => new SimulatorDriver(c); } }),
  system: plugin({ schema: systemSchema, load: async () => { const { SystemDriver } = await import('./system/index.js'); return (c) => new SystemDriver(c); } }),
};

export type DriverType = keyof typeof drivers;
export type DriverSchema = (typeof drivers)[DriverType]['schema'];
