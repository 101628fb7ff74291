/**
 * Sparkplug B payloads (the Tahu protobuf) to and from plain objects. A metric's value travels in the
 * protobuf field its datatype names (ints in `int_value`, 64-bit ints and DateTime in `long_value`,
 * ...); signed integers are two's complement in those unsigned fields, as Tahu's encoders write them.
 * 64-bit values come back as numbers when they fit in 2^53, else as bigint.
 */
import protobuf from 'protobufjs';
import { TAHU_PROTO } from './tahu-proto.js';

const PayloadType = protobuf.parse(TAHU_PROTO, { keepCase: true }).root.lookupType('org.eclipse.tahu.protobuf.Payload');

/** Sparkplug B metric datatypes (the ones a gateway meets; arrays, DataSet and Template pass as raw objects). */
export const DataType = {
  Int8: 1,
  Int16: 2,
  Int32: 3,
  Int64: 4,
  UInt8: 5,
  UInt16: 6,
  UInt32: 7,
  UInt64: 8,
  Float: 9,
  Double: 10,
  Boolean: 11,
  String: 12,
  DateTime: 13,
  Text: 14,
  UUID: 15,
  DataSet: 16,
  Bytes: 17,
  File: 18,
  Template: 19,
} as const;

export type MetricValue = number | bigint | boolean | string | Uint8Array | object | null;

export interface Metric {
  name?: string;
  alias?: number;
  /** Epoch ms. */
  timestamp?: number;
  datatype?: number;
  isHistorical?: boolean;
  isTransient?: boolean;
  value: MetricValue;
}

export interface SparkplugPayload {
  timestamp?: number;
  /** 0-255, per edge node session. */
  seq?: number;
  uuid?: string;
  metrics: Metric[];
  body?: Uint8Array;
}

type Wire = Record<string, unknown>;

/** The protobuf field a datatype's value lives in. */
function valueField(datatype: number): string | undefined {
  switch (datatype) {
    case DataType.Int8:
    case DataType.Int16:
    case DataType.Int32:
    case DataType.UInt8:
    case DataType.UInt16:
    case DataType.UInt32:
      return 'int_value';
    case DataType.Int64:
    case DataType.UInt64:
    case DataType.DateTime:
      return 'long_value';
    case DataType.Float:
      return 'float_value';
    case DataType.Double:
      return 'double_value';
    case DataType.Boolean:
      return 'boolean_value';
    case DataType.String:
    case DataType.Text:
    case DataType.UUID:
      return 'string_value';
    case DataType.Bytes:
    case DataType.File:
      return 'bytes_value';
    default:
      return undefined;
  }
}

function toWireValue(datatype: number, value: MetricValue): unknown {
  if (datatype === DataType.Int64 || datatype === DataType.UInt64 || datatype === DataType.DateTime) {
    // Two's complement in the unsigned field; protobufjs takes a decimal string for 64-bit values.
    return BigInt.asUintN(64, BigInt(value as number | bigint)).toString();
  }
  if (valueField(datatype) === 'int_value') return Number(value) >>> 0;
  return value;
}

function fromWireValue(datatype: number, m: Wire): MetricValue {
  switch (datatype) {
    case DataType.Int8:
      return ((m.int_value as number) << 24) >> 24;
    case DataType.Int16:
      return ((m.int_value as number) << 16) >> 16;
    case DataType.Int32:
      return (m.int_value as number) | 0;
    case DataType.Int64:
      return toNumberIfSafe(BigInt.asIntN(64, BigInt(String(m.long_value))));
    case DataType.UInt64:
    case DataType.DateTime:
      return toNumberIfSafe(BigInt(String(m.long_value)));
    default: {
      const field = valueField(datatype);
      if (field) return (m[field] as MetricValue) ?? null;
      // DataSet, Template, arrays: the decoded object as it is.
      for (const k of ['dataset_value', 'template_value', 'bytes_value']) if (m[k] !== undefined) return m[k] as MetricValue;
      return null;
    }
  }
}

/** The value of a metric whose datatype is unknown (an alias never born): whichever field is set. */
function anyValue(m: Wire): MetricValue {
  for (const k of VALUE_FIELDS) {
    if (m[k] === undefined) continue;
    return k === 'long_value' ? toNumberIfSafe(BigInt(String(m[k]))) : (m[k] as MetricValue);
  }
  return null;
}

const VALUE_FIELDS = ['int_value', 'long_value', 'float_value', 'double_value', 'boolean_value', 'string_value', 'bytes_value', 'dataset_value', 'template_value'];

function toNumberIfSafe(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

export function encodePayload(p: SparkplugPayload): Uint8Array {
  const metrics = p.metrics.map((m) => {
    const w: Wire = {};
    if (m.name !== undefined) w.name = m.name;
    if (m.alias !== undefined) w.alias = m.alias;
    if (m.timestamp !== undefined) w.timestamp = m.timestamp;
    if (m.datatype !== undefined) w.datatype = m.datatype;
    if (m.isHistorical) w.is_historical = true;
    if (m.isTransient) w.is_transient = true;
    const field = m.datatype === undefined ? undefined : valueField(m.datatype);
    if (m.value === null || m.value === undefined) w.is_null = true;
    else if (field && m.datatype !== undefined) w[field] = toWireValue(m.datatype, m.value);
    return w;
  });
  const wire: Wire = { metrics };
  if (p.timestamp !== undefined) wire.timestamp = p.timestamp;
  if (p.seq !== undefined) wire.seq = p.seq;
  if (p.uuid !== undefined) wire.uuid = p.uuid;
  if (p.body !== undefined) wire.body = p.body;
  return PayloadType.encode(PayloadType.fromObject(wire)).finish();
}

/**
 * Decodes a Sparkplug B payload. Throws on bytes that are not one (a clear sentence, for the caller to
 * count). Metrics that carry only an alias keep `datatype` undefined: the caller resolves it from the
 * birth certificate.
 */
export function decodePayload(bytes: Uint8Array, datatypeOfAlias?: (alias: number) => number | undefined): SparkplugPayload {
  let obj: Wire;
  try {
    obj = PayloadType.toObject(PayloadType.decode(bytes), { longs: String, bytes: Buffer, oneofs: false }) as Wire;
  } catch (err) {
    throw new Error(`not a Sparkplug B payload: ${(err as Error).message}`);
  }
  const metrics = ((obj.metrics as Wire[] | undefined) ?? []).map((m): Metric => {
    const alias = m.alias === undefined ? undefined : Number(m.alias);
    const datatype = (m.datatype as number | undefined) ?? (alias === undefined ? undefined : datatypeOfAlias?.(alias));
    const metric: Metric = {
      value: m.is_null ? null : datatype === undefined ? anyValue(m) : fromWireValue(datatype, m),
    };
    if (m.name !== undefined) metric.name = m.name as string;
    if (alias !== undefined) metric.alias = alias;
    if (m.timestamp !== undefined) metric.timestamp = Number(m.timestamp);
    if (datatype !== undefined) metric.datatype = datatype;
    if (m.is_historical) metric.isHistorical = true;
    if (m.is_transient) metric.isTransient = true;
    return metric;
  });
  const p: SparkplugPayload = { metrics };
  if (obj.timestamp !== undefined) p.timestamp = Number(obj.timestamp);
  if (obj.seq !== undefined) p.seq = Number(obj.seq);
  if (obj.uuid !== undefined) p.uuid = obj.uuid as string;
  if (obj.body !== undefined) p.body = obj.body as Uint8Array;
  return p;
}
