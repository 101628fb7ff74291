/**
 * OPC UA values as JSON: numbers, booleans and strings as themselves; DateTime as ISO 8601; 64-bit
 * integers as numbers while exact, else as decimal strings; arrays (typed arrays too) as JSON
 * arrays; LocalizedText as its text; NodeId, QualifiedName and others as their string form;
 * ByteString as base64. The StatusCode becomes `quality`: absent when good, `uncertain` or `bad`
 * (the value is kept, null when the server sent none) with the code's name in `status`.
 */
import { type DataValue, DataType, StatusCodes, type Variant, VariantArrayType } from 'node-opcua-client';

export interface MappedReading {
  payload: Record<string, unknown>;
  deviceTs?: number;
  value: unknown;
}

export function mapDataValue(dv: DataValue, unit?: string): MappedReading {
  const value = dv.value ? toJson(dv.value) : null;
  const payload: Record<string, unknown> = { value };
  if (unit !== undefined) payload.unit = unit;
  const sc = dv.statusCode ?? StatusCodes.Good;
  if (!sc.isGood()) {
    payload.quality = sc.isBad() ? 'bad' : 'uncertain';
    payload.status = sc.name;
  }
  const src = dv.sourceTimestamp?.getTime();
  return { payload, value, ...(src !== undefined && Number.isFinite(src) && src > 0 ? { deviceTs: src } : {}) };
}

export function toJson(v: Variant): unknown {
  if (v.dataType === DataType.Null) return null;
  if (v.arrayType === VariantArrayType.Scalar) return scalar(v.dataType, v.value);
  const arr = (v.value ?? []) as ArrayLike<unknown>;
  return Array.from(arr, (x) => scalar(v.dataType, x));
}

function scalar(type: DataType, x: unknown): unknown {
  if (x === null || x === undefined) return null;
  switch (type) {
    case DataType.Boolean:
      return Boolean(x);
    case DataType.Float:
    case DataType.Double:
      return Number.isFinite(x as number) ? x : null;
    case DataType.Int64:
    case DataType.UInt64:
      return int64(x as [number, number], type === DataType.Int64);
    case DataType.DateTime:
      return x instanceof Date && Number.isFinite(x.getTime()) ? x.toISOString() : null;
    case DataType.ByteString:
      return Buffer.isBuffer(x) ? x.toString('base64') : null;
    case DataType.LocalizedText:
      return (x as { text?: string | null }).text ?? null;
    case DataType.String:
    case DataType.Byte:
    case DataType.SByte:
    case DataType.Int16:
    case DataType.UInt16:
    case DataType.Int32:
    case DataType.UInt32:
      return x;
    default:
      if (typeof x === 'number' || typeof x === 'string' || typeof x === 'boolean') return x;
      return String(x);
  }
}

/** node-opcua carries a 64-bit integer as [high, low] 32-bit words. */
function int64(hl: [number, number] | number, signed: boolean): number | string {
  if (typeof hl === 'number') return hl;
  const big = (BigInt(hl[0] >>> 0) << 32n) | BigInt(hl[1] >>> 0);
  const v = signed ? BigInt.asIntN(64, big) : big;
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
}

/** The Variant that writes `value` to a node whose current value has this type and shape. */
export function toVariantValue(type: DataType, arrayType: VariantArrayType, value: unknown): unknown {
  const one = (x: unknown): unknown => {
    switch (type) {
      case DataType.Boolean:
        if (typeof x !== 'boolean') throw new Error('needs true or false');
        return x;
      case DataType.String:
        if (typeof x !== 'string') throw new Error('needs a string');
        return x;
      case DataType.DateTime: {
        const d = new Date(x as string | number);
        if (!Number.isFinite(d.getTime())) throw new Error('needs a time (ISO 8601 or epoch ms)');
        return d;
      }
      case DataType.Int64:
      case DataType.UInt64: {
        if (typeof x !== 'number' || !Number.isSafeInteger(x)) throw new Error('needs an integer');
        const b = BigInt.asUintN(64, BigInt(x));
        return [Number(b >> 32n), Number(b & 0xffffffffn)];
      }
      default: {
        if (typeof x !== 'number' || !Number.isFinite(x)) throw new Error('needs a number');
        const range = INT_RANGE[type];
        if (range) {
          if (!Number.isInteger(x)) throw new Error('needs an integer');
          if (x < range[0] || x > range[1]) throw new Error(`is outside ${DataType[type]} (${range[0]}..${range[1]})`);
        }
        return x;
      }
    }
  };
  if (arrayType === VariantArrayType.Scalar) return one(value);
  if (!Array.isArray(value)) throw new Error('needs an array');
  return value.map(one);
}

const INT_RANGE: Partial<Record<DataType, [number, number]>> = {
  [DataType.SByte]: [-128, 127],
  [DataType.Byte]: [0, 255],
  [DataType.Int16]: [-32768, 32767],
  [DataType.UInt16]: [0, 65535],
  [DataType.Int32]: [-2147483648, 2147483647],
  [DataType.UInt32]: [0, 4294967295],
};
