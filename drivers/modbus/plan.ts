/**
 * The read plan of one device: its points coalesced into as few requests as the protocol allows
 * (neighbouring addresses of one table in one request, at most `maxRegisters` registers or
 * `maxBits` bits, gaps of at most `maxGap` unused addresses), and the decoding of a point's value
 * from the words or bits a request returned. Pure functions: no I/O here.
 */
import { type ModbusDeviceConfig, type ModbusPointConfig, pointType, REGISTER_WIDTH } from './schema.js';

export type Table = ModbusPointConfig['table'];

export interface PlannedPoint {
  config: ModbusPointConfig;
  topic: string;
  type: keyof typeof REGISTER_WIDTH;
  width: number;
  deadband: number;
}

export interface ReadRequest {
  table: Table;
  address: number;
  count: number;
  points: PlannedPoint[];
}

export function planRequests(
  device: ModbusDeviceConfig,
  defaultTopic: (p: ModbusPointConfig) => string,
): ReadRequest[] {
  const byTable = new Map<Table, PlannedPoint[]>();
  for (const p of device.points) {
    const type = pointType(p);
    const planned: PlannedPoint = {
      config: p,
      topic: p.topic ?? defaultTopic(p),
      type,
      width: REGISTER_WIDTH[type],
      deadband: p.deadband ?? device.deadband,
    };
    const list = byTable.get(p.table) ?? [];
    list.push(planned);
    byTable.set(p.table, list);
  }
  const requests: ReadRequest[] = [];
  for (const [table, points] of byTable) {
    const limit = table === 'coil' || table === 'discrete' ? device.maxBits : device.maxRegisters;
    points.sort((a, b) => a.config.address - b.config.address);
    let current: ReadRequest | undefined;
    for (const p of points) {
      const end = p.config.address + p.width; // exclusive
      if (current) {
        const currentEnd = current.address + current.count;
        const gap = p.config.address - currentEnd;
        const newCount = Math.max(currentEnd, end) - current.address;
        if (gap <= device.maxGap && newCount <= limit) {
          current.count = newCount;
          current.points.push(p);
          continue;
        }
      }
      current = { table, address: p.config.address, count: p.width, points: [p] };
      requests.push(current);
    }
  }
  return requests;
}

/** The raw value of a register point from the words of its request (before scale and offset). */
export function decodeRegisters(p: PlannedPoint, words: readonly number[], requestAddress: number): number | boolean {
  const start = p.config.address - requestAddress;
  if (p.config.bit !== undefined) return ((words[start] >> p.config.bit) & 1) === 1;
  const buf = Buffer.allocUnsafe(p.width * 2);
  for (let i = 0; i < p.width; i++) {
    // wordOrder little: the least significant register comes first on the wire.
    const w = words[start + (p.config.wordOrder === 'little' ? p.width - 1 - i : i)];
    if (p.config.byteOrder === 'little') {
      buf[i * 2] = w & 0xff;
      buf[i * 2 + 1] = w >> 8;
    } else {
      buf[i * 2] = w >> 8;
      buf[i * 2 + 1] = w & 0xff;
    }
  }
  switch (p.type) {
    case 'int16':
      return buf.readInt16BE(0);
    case 'int32':
      return buf.readInt32BE(0);
    case 'uint32':
      return buf.readUInt32BE(0);
    case 'float32':
      return buf.readFloatBE(0);
    case 'float64':
      return buf.readDoubleBE(0);
    default:
      return buf.readUInt16BE(0);
  }
}

/**
 * raw × scale + offset. A scaled integer is rounded to 12 significant digits so `217 × 0.1` reads
 * 21.7, not 21.700000000000003; unscaled values pass unchanged (a float64 keeps its precision).
 */
export function scaleValue(p: PlannedPoint, raw: number | boolean): number | boolean {
  if (typeof raw === 'boolean') return raw;
  if (p.config.scale === 1 && p.config.offset === 0) return raw;
  const v = raw * p.config.scale + p.config.offset;
  return Number.isFinite(v) ? Number(v.toPrecision(12)) : v;
}

const INT_RANGE = {
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
} as const;

/**
 * The registers (or the coil state) that hold `value` at a point: the inverse of scale and offset,
 * rounded for integer types, in the point's byte and word order. Throws one sentence when the value
 * does not fit the point's type.
 */
export function encodeValue(p: PlannedPoint, value: number | boolean): boolean | number[] {
  if (p.config.table === 'coil') {
    if (typeof value !== 'boolean') throw new Error('a coil takes true or false');
    return value;
  }
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new Error(`a ${p.type} register takes a number`);
  let raw = (value - p.config.offset) / p.config.scale;
  const buf = Buffer.alloc(p.width * 2);
  if (p.type === 'float32') buf.writeFloatBE(raw, 0);
  else if (p.type === 'float64') buf.writeDoubleBE(raw, 0);
  else {
    // A scaled value lands between two raw integers only by float error (21.7 / 0.1 = 216.99999...).
    raw = Math.round(raw);
    const [lo, hi] = INT_RANGE[p.type as keyof typeof INT_RANGE];
    if (raw < lo || raw > hi) throw new Error(`${value} is outside what a ${p.type} register holds at this scale`);
    if (p.type === 'int16') buf.writeInt16BE(raw, 0);
    else if (p.type === 'uint16') buf.writeUInt16BE(raw, 0);
    else if (p.type === 'int32') buf.writeInt32BE(raw, 0);
    else buf.writeUInt32BE(raw, 0);
  }
  const words: number[] = [];
  for (let i = 0; i < p.width; i++) {
    const hi = buf[i * 2];
    const lo = buf[i * 2 + 1];
    words.push(p.config.byteOrder === 'little' ? (lo << 8) | hi : (hi << 8) | lo);
  }
  // wordOrder little: the least significant register goes first on the wire.
  return p.config.wordOrder === 'little' ? words.reverse() : words;
}
