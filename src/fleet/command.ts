/**
 * Fleet commands: the envelope, the body of each command type, signing and the checks a command
 * passes before it may change anything.
 *
 * Envelope (src/fleet/README.md): `{"id", "type", "device", "issuedAt", "expiresAt", "body",
 * "keyId", "sig"}`; `sig` is Ed25519 (base64) over the canonical JSON of every other field, so no
 * field, including the target `device` and the times, can be changed without breaking it. Times are
 * epoch milliseconds. `device` was not in the first envelope's field list but is what makes "a command for
 * another device" refusable: `sluice fleet sign` always sets it, and a command that has one is
 * refused by every other gateway. A command without it (hand-made to that first list) is valid
 * for any gateway that trusts the key; each gateway's replay store still runs it at most once.
 * Canonical JSON writes non-ASCII characters as themselves; a signature over the same text with
 * them escaped as `\uXXXX` (Python's json.dumps default) is accepted too.
 *
 * `checkCommand` is pure (it reads the replay store but records nothing): it returns the command, or a
 * refusal with a bounded `code` (for metrics) and one sentence (for the operator). The order of the
 * checks is the order an operator debugs in: is it JSON, is it signed, by whom, for me, still valid,
 * new, a type I know, a body that fits.
 */
import type { KeyObject } from 'node:crypto';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { duration } from '../core/config-types.js';
import { canonicalJson } from './canonical.js';
import { signBytes, verifyBytes } from './keys.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

/** The body of each command type. A type missing here is unknown and refused. */
export const commandBodies = {
  ping: z.strictObject({}),
  status: z.strictObject({}),
  'config.get': z.strictObject({}),
  'config.set': z.strictObject({
    /** Must exceed the running config version (the same version with the same config is a no-op). */
    version: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
    config: z.record(z.string(), z.unknown()),
  }),
  'driver.restart': z.strictObject({ name: z.string().min(1) }),
  /** Writes a value to a driver point declared writable (the write path's limits and audit apply). */
  'device.write': z.strictObject({
    driver: z.string().min(1).max(64),
    point: z.string().min(1).max(64),
    value: z.union([z.number(), z.boolean(), z.string(), z.array(z.union([z.number(), z.boolean(), z.string()])).max(10_000)]),
    reason: z.string().max(500).optional(),
  }),
  /** Sends the backlog now, ignoring transmit windows; every uplink when no name is given. */
  'uplink.flush': z.strictObject({ name: z.string().min(1).optional() }),
  /** Sets the log level; back to the configured level after `for`, when given. */
  'log.level': z.strictObject({ level: z.enum(LOG_LEVELS), for: duration().optional() }),
} as const;

export type CommandType = keyof typeof commandBodies;
export const COMMAND_TYPES = Object.keys(commandBodies) as CommandType[];
export type CommandBody<T extends CommandType> = z.output<(typeof commandBodies)[T]>;

/**
 * A command time: epoch milliseconds (what `sluice fleet sign` writes), epoch seconds (a number
 * below 1e11, i.e. before 1973 in ms), or an ISO 8601 string; always milliseconds after parsing.
 * The signature covers the text as sent, so accepting several spellings opens nothing.
 */
const timestamp = () =>
  z.union([z.number().nonnegative(), z.string().min(1).max(40)]).transform((v, ctx) => {
    if (typeof v === 'number') return Math.round(v < 1e11 ? v * 1000 : v);
    const ms = /^\d{4}-\d{2}-\d{2}T/.test(v) ? Date.parse(v) : Number.NaN;
    if (Number.isNaN(ms)) {
      ctx.addIssue({ code: 'custom', message: `"${v}" is not a time (epoch ms, or ISO 8601 like 2026-01-31T12:00:00Z)` });
      return z.NEVER;
    }
    return ms;
  });

const envelopeSchema = z.strictObject({
  id: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces'),
  type: z.string().min(1).max(64),
  device: z.string().min(1).max(64).optional(),
  issuedAt: timestamp(),
  expiresAt: timestamp(),
  body: z.unknown().optional(),
  keyId: z.string().min(1).max(128),
  sig: z.string().min(1).max(200),
});
export type CommandEnvelope = z.output<typeof envelopeSchema>;

export interface VerifiedCommand {
  id: string;
  type: CommandType;
  device?: string;
  issuedAt: number;
  expiresAt: number;
  keyId: string;
  body: unknown;
}

export type RefusalCode =
  | 'malformed'
  | 'unsigned'
  | 'unknown-key'
  | 'bad-signature'
  | 'wrong-device'
  | 'expired'
  | 'not-yet-valid'
  | 'lifetime'
  | 'replayed'
  | 'unknown-type'
  | 'bad-body'
  | 'busy';

export type CheckResult =
  | { ok: true; command: VerifiedCommand }
  | { ok: false; id: string | null; code: RefusalCode; error: string };

export interface CheckContext {
  gatewayId: string;
  trustedKeys: ReadonlyMap<string, KeyObject>;
  now: number;
  /** How far in the future `issuedAt` may lie (the operator's clock vs. ours). */
  clockSkewMs: number;
  /** Longest accepted `expiresAt - issuedAt`: bounds how long the replay store must remember an id. */
  maxLifetimeMs: number;
  /** Why this id would be a replay, or undefined when it is new. */
  replayed(id: string, issuedAt: number): string | undefined;
  /**
   * The latest time this gateway's clock was known to be right (the replay store's): a command that
   * expired before it is expired even when the clock is now unset and reads 1970.
   */
  lastKnownTime?: number;
  /** Refuse commands that name no device (`fleet.requireDevice`). */
  requireDevice?: boolean;
}

/** Before 2020 the clock has not been set (a Pi without RTC boots in 1970): "in the future" means nothing then. */
const CLOCK_SYNCED_AFTER = Date.UTC(2020, 0, 1);

/** The bytes a signature covers: the canonical JSON of every field but `sig`. */
export function signedPayload(envelope: Omit<CommandEnvelope, 'sig'> | Record<string, unknown>): string {
  const { sig: _sig, ...rest } = envelope as Record<string, unknown>;
  return canonicalJson(rest);
}

export function checkCommand(raw: Buffer | string, ctx: CheckContext): CheckResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof raw === 'string' ? raw : raw.toString('utf8'));
  } catch {
    return refuse(null, 'malformed', 'command is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return refuse(null, 'malformed', 'command is not a JSON object');
  }
  const obj = parsed as Record<string, unknown>;
  const id = typeof obj.id === 'string' && obj.id.length <= 128 ? obj.id : null;
  if (obj.sig === undefined || obj.sig === null || obj.sig === '') {
    return refuse(id, 'unsigned', 'command is unsigned (no "sig"); sign it with `sluice fleet sign`');
  }
  const shape = envelopeSchema.safeParse(obj);
  if (!shape.success) {
    const issue = shape.error.issues[0];
    const where = issue.path.length ? issue.path.join('.') : 'command';
    return refuse(id, 'malformed', `command is malformed: ${where}: ${issue.message.replace(/^Invalid input: /, '')}`);
  }
  const env = shape.data;
  const key = ctx.trustedKeys.get(env.keyId);
  if (!key) return refuse(id, 'unknown-key', `keyId "${env.keyId}" is not in fleet.trustedKeys`);
  let message: string;
  try {
    message = signedPayload(obj);
  } catch {
    return refuse(id, 'malformed', 'command holds a value JSON cannot carry');
  }
  if (!verifyBytes(key, message, env.sig) && !(/[^\x00-\x7f]/.test(message) && verifyBytes(key, asciiEscaped(message), env.sig))) {
    return refuse(
      id,
      'bad-signature',
      `signature does not verify with key "${env.keyId}" (the command was altered or signed with another key)`,
    );
  }
  if (env.device === undefined && ctx.requireDevice) {
    return refuse(id, 'wrong-device', 'command names no "device" and fleet.requireDevice is set (sign it with `sluice fleet sign --device`)');
  }
  if (env.device !== undefined && env.device !== ctx.gatewayId) {
    return refuse(id, 'wrong-device', `command is for device "${env.device}", this gateway is "${ctx.gatewayId}"`);
  }
  if (env.expiresAt <= env.issuedAt) return refuse(id, 'malformed', 'command expires before it was issued');
  if (env.expiresAt - env.issuedAt > ctx.maxLifetimeMs) {
    return refuse(
      id,
      'lifetime',
      `command is valid for longer than fleet.maxCommandLifetime (${ctx.maxLifetimeMs} ms)`,
    );
  }
  if (Math.max(ctx.now, ctx.lastKnownTime ?? 0) > env.expiresAt) {
    return refuse(id, 'expired', `command expired at ${new Date(env.expiresAt).toISOString()}`);
  }
  if (ctx.now >= CLOCK_SYNCED_AFTER && env.issuedAt > ctx.now + ctx.clockSkewMs) {
    return refuse(
      id,
      'not-yet-valid',
      `command is issued at ${new Date(env.issuedAt).toISOString()}, in the future of this gateway's clock`,
    );
  }
  const replay = ctx.replayed(env.id, env.issuedAt);
  if (replay) return refuse(id, 'replayed', replay);
  if (!Object.hasOwn(commandBodies, env.type)) {
    return refuse(id, 'unknown-type', `unknown command type "${env.type}" (known: ${COMMAND_TYPES.join(', ')})`);
  }
  const type = env.type as CommandType;
  const body = commandBodies[type].safeParse(env.body ?? {});
  if (!body.success) {
    const issue = body.error.issues[0];
    const where = ['body', ...issue.path].join('.');
    return refuse(id, 'bad-body', `${where}: ${issue.message.replace(/^Invalid input: /, '')}`);
  }
  return {
    ok: true,
    command: {
      id: env.id,
      type,
      device: env.device,
      issuedAt: env.issuedAt,
      expiresAt: env.expiresAt,
      keyId: env.keyId,
      body: body.data,
    },
  };
}

/** The same JSON text with every non-ASCII UTF-16 unit escaped as `\uxxxx` (as Python's json.dumps writes it). */
function asciiEscaped(json: string): string {
  return json.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function refuse(id: string | null, code: RefusalCode, error: string): CheckResult {
  return { ok: false, id, code, error };
}

export interface SignOptions {
  type: string;
  device: string;
  body?: unknown;
  keyId: string;
  id?: string;
  /** Default: now. */
  issuedAt?: number;
  /** Validity from `issuedAt`, ms. Default 7 days (a gateway may be offline for a while). */
  lifetimeMs?: number;
}

/** Builds and signs a command envelope (what `sluice fleet sign` prints). */
export function signCommand(privateKey: KeyObject, opts: SignOptions): CommandEnvelope {
  const issuedAt = opts.issuedAt ?? Date.now();
  const unsigned = {
    id: opts.id ?? randomUUID(),
    type: opts.type,
    device: opts.device,
    issuedAt,
    expiresAt: issuedAt + (opts.lifetimeMs ?? 7 * 86_400_000),
    body: opts.body ?? {},
    keyId: opts.keyId,
  };
  return { ...unsigned, sig: signBytes(privateKey, signedPayload(unsigned)) };
}
