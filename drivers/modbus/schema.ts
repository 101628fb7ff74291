/** Options of the Modbus TCP and RTU drivers: a register map per device. */
import { z } from 'zod';
import { duration, name, topicName } from '../../src/config/types.js';

export const pointSchema = z.strictObject({
  name: name(),
  table: z.enum(['holding', 'input', 'coil', 'discrete']),
  address: z.number().int().min(0).max(65535),
  type: z.enum(['int16', 'uint16', 'int32', 'uint32', 'float32', 'float64', 'bool']).default('uint16'),
  scale: z.number().default(1),
  offset: z.number().default(0),
  unit: z.string().optional(),
  topic: topicName(),
});

export const deviceSchema = z.strictObject({
  unitId: z.number().int().min(0).max(255).default(1),
  interval: duration().default(1000),
  timeout: duration().default(1000),
  points: z.array(pointSchema).min(1),
});

const common = {
  name: name(),
  enabled: z.boolean().default(true),
  devices: z.array(deviceSchema).min(1),
};

export const modbusTcpSchema = z.strictObject({
  ...common,
  type: z.literal('modbus-tcp'),
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(502),
});

export const modbusRtuSchema = z.strictObject({
  ...common,
  type: z.literal('modbus-rtu'),
  path: z.string().min(1),
  baudRate: z.number().int().positive().default(9600),
  parity: z.enum(['none', 'even', 'odd']).default('none'),
  dataBits: z.union([z.literal(7), z.literal(8)]).default(8),
  stopBits: z.union([z.literal(1), z.literal(2)]).default(1),
});
