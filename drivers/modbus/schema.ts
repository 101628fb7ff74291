/**
 * Options of the Modbus TCP and RTU drivers: a register map per device. The schema checks what a
 * poller cannot fix at run time (overlapping points, a value running past address 65535, a type
 * that does not fit its table, request limits above the protocol's) and names the point.
 */
import { z } from 'zod';
import { duration, name, topicName, republishSchema } from '../../src/core/config-types.js';
import { writableSchema } from '../write/schema.js';

/** Registers (16-bit words) a value of each type occupies. */
export const REGISTER_WIDTH = { int16: 1, uint16: 1, int32: 2, uint32: 2, float32: 2, float64: 4, bool: 1 } as const;

/** Protocol limits of one read request (Modbus application protocol v1.1b3, 6.1-6.4). */
export const MAX_REGISTERS_PER_REQUEST = 125;
export const MAX_BITS_PER_REQUEST = 2000;

export const pointSchema = z.strictObject({
  name: name(),
  table: z.enum(['holding', 'input', 'coil', 'discrete']),
  address: z.number().int().min(0).max(65535),
  /** Defaults to `bool` on coils and discretes, `uint16` on registers. */
  type: z.enum(['int16', 'uint16', 'int32', 'uint32', 'float32', 'float64', 'bool']).optional(),
  /** Order of the two bytes within each register (`big`: the Modbus standard). */
  byteOrder: z.enum(['big', 'little']).default('big'),
  /** Order of the registers of a 32/64-bit value (`big`: most significant register first). */
  wordOrder: z.enum(['big', 'little']).default('big'),
  /** value = raw × scale + offset. */
  scale: z.number().default(1),
  offset: z.number().default(0),
  /** A single bit (0 = least significant) of a 16-bit register: the reading is a boolean. */
  bit: z.number().int().min(0).max(15).optional(),
  unit: z.string().optional(),
  /** Defaults to `modbus/<driver>/<unitId>/<point>`. */
  topic: topicName().optional(),
  /** Report-on-change: the least change that is reported (absolute, in scaled units). */
  deadband: z.number().min(0).optional(),
  /** The point may be written (coils and whole holding registers), within these limits. */
  writable: writableSchema.optional(),
});

export const deviceSchema = z.strictObject({
  unitId: z.number().int().min(0).max(255).default(1),
  /** Shown in health and status events; defaults to `unit-<unitId>`. */
  name: name().optional(),
  interval: duration().default(1000),
  /** Per request. */
  timeout: duration().default(1000),
  /** Further attempts of a failed request within one poll. */
  retries: z.number().int().min(0).max(10).default(1),
  /** Consecutive failed polls before the device is `down` and its circuit breaker opens. */
  downAfter: z.number().int().min(1).max(100).default(3),
  /** Longest wait between probes of a `down` device (the breaker backs off exponentially up to this). */
  maxBackoff: duration().default(30_000),
  /** Report a point only when it changed by more than its deadband (or `heartbeat` passed). */
  reportOnChange: z.boolean().default(false),
  /** Default deadband of the device's points under report-on-change. */
  deadband: z.number().min(0).default(0),
  /** Under report-on-change, an unchanged value is still reported this often (0: never). */
  heartbeat: duration().default(0),
  /**
   * Unused registers a request may read to join two neighbouring points into one request. 0 reads
   * only contiguous points together (safe on devices that refuse reads of unmapped addresses).
   */
  maxGap: z.number().int().min(0).max(124).default(0),
  /** Registers per request (≤ 125) and bits per request (≤ 2000); lower for devices that need it. */
  maxRegisters: z
    .number()
    .int()
    .min(1)
    .max(MAX_REGISTERS_PER_REQUEST, `is at most ${MAX_REGISTERS_PER_REQUEST} registers per request (the Modbus limit)`)
    .default(MAX_REGISTERS_PER_REQUEST),
  maxBits: z
    .number()
    .int()
    .min(1)
    .max(MAX_BITS_PER_REQUEST, `is at most ${MAX_BITS_PER_REQUEST} bits per request (the Modbus limit)`)
    .default(MAX_BITS_PER_REQUEST),
  points: z.array(pointSchema).min(1),
});

export type ModbusPointConfig = z.output<typeof pointSchema>;
export type ModbusDeviceConfig = z.output<typeof deviceSchema>;

const common = {
  name: name(),
  enabled: z.boolean().default(true),
  /** Also publish each reading on the gateway's own broker, once durable (off unless set). */
  republish: republishSchema.optional(),
  devices: z.array(deviceSchema).min(1),
};

/** The effective type of a point (the default depends on its table). */
export function pointType(p: Pick<ModbusPointConfig, 'table' | 'type'>): keyof typeof REGISTER_WIDTH {
  return p.type ?? (p.table === 'coil' || p.table === 'discrete' ? 'bool' : 'uint16');
}

type Issue = { path: (string | number)[]; message: string };

/** Checks of a driver's devices that a per-field schema cannot express; exported for the tests. */
export function registerMapIssues(devices: z.output<typeof deviceSchema>[]): Issue[] {
  const issues: Issue[] = [];
  const unitIds = new Map<number, number>();
  // Writes name a point by driver and point name: a writable name must be unique in the driver.
  const writable = new Map<string, number>();
  devices.forEach((d, di) =>
    d.points.forEach((p, pi) => {
      if (!p.writable) return;
      const other = writable.get(p.name);
      if (other !== undefined && other !== di)
        issues.push({ path: ['devices', di, 'points', pi, 'name'], message: `writable point "${p.name}" is also in devices[${other}]; writes name points by driver and name, so rename one` });
      else writable.set(p.name, di);
    }),
  );
  devices.forEach((d, di) => {
    const other = unitIds.get(d.unitId);
    if (other !== undefined)
      issues.push({ path: ['devices', di, 'unitId'], message: `unit id ${d.unitId} is also devices[${other}]` });
    else unitIds.set(d.unitId, di);
    const names = new Set<string>();
    // Per table: which point holds each register (or each bit of a register) already.
    const taken = new Map<string, { point: string; bit?: number }[]>();
    d.points.forEach((p, pi) => {
      const at = (field: string, message: string) =>
        issues.push({ path: ['devices', di, 'points', pi, field], message });
      if (names.has(p.name)) at('name', `point "${p.name}" is defined twice in this device`);
      names.add(p.name);
      const type = pointType(p);
      const problem = pointProblem(p, type);
      if (problem) {
        at(problem[0], problem[1]);
        return;
      }
      const width = REGISTER_WIDTH[type];
      for (let a = p.address; a < p.address + width; a++) {
        const key = `${p.table}:${a}`;
        const holders = taken.get(key) ?? [];
        // Several bit points may share a register, and a bit point may read a register that a
        // whole-register point reads too (a status word and its flags); anything else overlaps.
        const clash = holders.find((h) => (p.bit === undefined ? h.bit === undefined : h.bit === p.bit));
        if (clash) {
          at('address', `point "${p.name}" overlaps point "${clash.point}" at ${p.table} address ${a}`);
          return;
        }
        holders.push({ point: p.name, bit: p.bit });
        taken.set(key, holders);
      }
    });
  });
  return issues;
}

/** What is wrong with one point on its own (field and sentence), if anything. */
function pointProblem(p: ModbusPointConfig, type: keyof typeof REGISTER_WIDTH): [string, string] | undefined {
  const bitTable = p.table === 'coil' || p.table === 'discrete';
  if (bitTable && type !== 'bool')
    return ['type', `point "${p.name}": a ${p.table} holds one bit, so its type is bool`];
  if (!bitTable && type === 'bool' && p.bit === undefined)
    return ['type', `point "${p.name}": a register is not bool; use "bit" to read one bit of it`];
  if (p.bit !== undefined && (bitTable || !['int16', 'uint16', 'bool'].includes(type)))
    return ['bit', `point "${p.name}": "bit" selects a bit of a 16-bit register (table holding or input, type uint16)`];
  if (p.writable && (p.table === 'input' || p.table === 'discrete'))
    return ['writable', `point "${p.name}": ${p.table === 'input' ? 'input registers' : 'discrete inputs'} are read-only in Modbus`];
  if (p.writable && p.bit !== undefined)
    return ['writable', `point "${p.name}": a single bit of a register cannot be written (it would overwrite the other bits)`];
  if (p.address + REGISTER_WIDTH[type] - 1 > 65535)
    return ['address', `point "${p.name}": a ${type} at ${p.address} runs past the last address 65535`];
  return undefined;
}

function refineRegisterMap(cfg: { devices: z.output<typeof deviceSchema>[] }, ctx: z.RefinementCtx): void {
  for (const issue of registerMapIssues(cfg.devices)) ctx.addIssue({ code: 'custom', ...issue });
}

export const modbusTcpSchema = z
  .strictObject({
    ...common,
    type: z.literal('modbus-tcp'),
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(502),
  })
  .superRefine(refineRegisterMap);

export const modbusRtuSchema = z
  .strictObject({
    ...common,
    type: z.literal('modbus-rtu'),
    path: z.string().min(1),
    baudRate: z.number().int().positive().default(9600),
    parity: z.enum(['none', 'even', 'odd']).default('none'),
    dataBits: z.union([z.literal(7), z.literal(8)]).default(8),
    stopBits: z.union([z.literal(1), z.literal(2)]).default(1),
  })
  .superRefine(refineRegisterMap);

export type ModbusTcpConfig = z.output<typeof modbusTcpSchema>;
export type ModbusRtuConfig = z.output<typeof modbusRtuSchema>;
export type ModbusConfig = ModbusTcpConfig | ModbusRtuConfig;
