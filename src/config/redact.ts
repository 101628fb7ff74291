/**
 * The one way to show a config to anyone: every value whose schema is marked `secret()` (see
 * core/config-types.ts) becomes `(redacted)`, and every other string has the credentials it carries in
 * text (URL user-info, connection-string keys) scrubbed. Used by fleet `config.get`, the status and
 * log lines that echo config; reusable by any command that prints the effective config.
 *
 * The walk follows the schema alongside the value: objects by their shape, arrays and records by
 * their element, wrappers (optional, default, pipe, ...) by their inner schema. A union is walked
 * with each of its options in turn, so a field secret in any option of a discriminated union is
 * redacted (over-redacting a same-named field of another option is the safe direction).
 */
import type { z } from 'zod';
import { REDACTED, scrubCredentials } from '../core/scrub.js';
import { configSchema } from './schema.js';
import { secretSchemas } from '../core/config-types.js';

type Def = {
  type: string;
  shape?: Record<string, z.ZodType>;
  catchall?: z.ZodType;
  element?: z.ZodType;
  valueType?: z.ZodType;
  innerType?: z.ZodType;
  options?: z.ZodType[];
  left?: z.ZodType;
  right?: z.ZodType;
  in?: z.ZodType;
  out?: z.ZodType;
  getter?: () => z.ZodType;
};

const MAX_DEPTH = 32;

/** A copy of `value` (a config, or any part of one given with its schema) safe to show. */
export function redactConfig<T>(value: T, schema: z.ZodType = configSchema): T {
  return walk(value, schema, 0) as T;
}

function walk(value: unknown, schema: z.ZodType | undefined, depth: number): unknown {
  if (value === undefined || value === null) return value;
  if (schema && secretSchemas.has(schema)) return REDACTED;
  if (!schema || depth > MAX_DEPTH) return scrubAll(value, depth);
  const def = (schema as unknown as { _zod: { def: Def } })._zod.def;
  switch (def.type) {
    case 'object': {
      if (!isPlainObject(value)) return scrubAll(value, depth);
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = walk(v, def.shape?.[k] ?? def.catchall, depth + 1);
      return out;
    }
    case 'array':
      return Array.isArray(value) ? value.map((v) => walk(v, def.element, depth + 1)) : scrubAll(value, depth);
    case 'record': {
      if (!isPlainObject(value)) return scrubAll(value, depth);
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = walk(v, def.valueType, depth + 1);
      return out;
    }
    case 'union':
      return (def.options ?? []).reduce<unknown>((v, o) => walk(v, o, depth + 1), value);
    case 'intersection':
      return walk(walk(value, def.left, depth + 1), def.right, depth + 1);
    case 'pipe':
      return walk(walk(value, def.in, depth + 1), def.out, depth + 1);
    case 'lazy':
      return walk(value, def.getter?.(), depth + 1);
    default:
      return def.innerType ? walk(value, def.innerType, depth + 1) : scrubAll(value, depth);
  }
}

/** Strings scrubbed of credentials in text, all the way down (for values the schema does not describe). */
function scrubAll(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return scrubCredentials(value);
  if (depth > MAX_DEPTH) return value;
  if (Array.isArray(value)) return value.map((v) => scrubAll(v, depth + 1));
  if (isPlainObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, scrubAll(v, depth + 1)]));
  return value;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
