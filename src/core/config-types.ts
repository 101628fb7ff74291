/**
 * Building blocks of the config schema shared by every component's own `schema.ts`: units that
 * accept `256MiB` / `30s` strings, and MQTT topic filters that are checked when the config loads.
 */
import { z } from 'zod';
import { parseDuration, parseSize } from './units.js';

/** A size in bytes: a number or a `256MiB`-style string. */
export const size = () =>
  z.union([z.number(), z.string()]).transform((v, ctx) => {
    const bytes = parseSize(v);
    if (bytes === undefined) {
      ctx.addIssue({ code: 'custom', message: `"${v}" is not a size (use bytes or e.g. 64KiB, 256MiB, 1GiB)` });
      return z.NEVER;
    }
    return bytes;
  });

/** A duration in milliseconds: a number of ms or a `30s`/`5m`/`7d` string. */
export const duration = () =>
  z.union([z.number(), z.string()]).transform((v, ctx) => {
    const ms = parseDuration(v);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration (use e.g. 500ms, 30s, 5m, 7d)` });
      return z.NEVER;
    }
    return ms;
  });

/**
 * Republishing on the gateway's own broker (`republish:` on a driver or an analytics rule): events,
 * once durable, are also published to local subscribers (Node-RED, Telegraf). The topic is a
 * template: `{topic}` (the event's), `{driver}`, `{point}` (the topic's last level), `{rule}`,
 * `{kind}`. Off unless set.
 */
export const republishSchema = z.strictObject({
  topic: z
    .string()
    .min(1)
    .default('{topic}')
    .refine((t) => !/[+#\u0000]/.test(t), { message: 'is a topic to publish to: no + or #' }),
  qos: z.union([z.literal(0), z.literal(1)]).default(0),
  retain: z.boolean().default(false),
});
export type RepublishConfig = z.output<typeof republishSchema>;

/** An MQTT topic filter (`+` and `#` allowed where MQTT allows them). */
export const topicFilter = () => z.string().refine(isValidTopicFilter, { message: 'is not a valid MQTT topic filter' });

/** An MQTT topic name to publish to (no wildcards). */
export const topicName = () =>
  z
    .string()
    .min(1)
    .refine((t) => !/[+#\u0000]/.test(t), { message: 'is not a valid MQTT topic (no + or # in a topic name)' });

export function isValidTopicFilter(f: string): boolean {
  if (f.length === 0 || f.includes('\u0000')) return false;
  const levels = f.split('/');
  return levels.every((l, i) =>
    l === '#' ? i === levels.length - 1 : l === '+' || (!l.includes('+') && !l.includes('#')),
  );
}

/** A name used as a key (uplink, driver, analytics rule): letters, digits, `-`, `_`, `.`. */
export const name = () =>
  z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'must be 1-64 letters, digits, "-", "_" or "."');

/**
 * Schemas of secret values (passwords, tokens, keys, hashes). Everything that echoes the config
 * (fleet `config.get`, status, logs, `sluice config --effective`) shows them as `(redacted)`: see
 * config/redact.ts, which walks a config along the schema and looks them up here.
 */
export const secretSchemas = z.registry<{ secret: true }>();

/** Marks `schema` as a secret value (wrap the inner schema: `secret(z.string()).optional()`). */
export function secret<T extends z.ZodType>(schema: T): T {
  secretSchemas.add(schema as z.ZodType, { secret: true });
  return schema;
}
