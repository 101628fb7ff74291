/** Fleet management (signed commands over the fleet MQTT uplink) and schedules. */
import cron from 'node-cron';
import { z } from 'zod';
import { duration, name } from '../core/config-types.js';
import { commandBodies } from './command.js';
import { parsePublicKey } from './keys.js';

export const trustedKeySchema = z.strictObject({
  keyId: z.string().min(1).max(128),
  /** Ed25519 public key: base64 of the 32 raw bytes (what `sluice keygen` prints) or a PEM block. */
  publicKey: z.string().superRefine((v, ctx) => {
    try {
      parsePublicKey(v);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  }),
});

export const fleetSchema = z
  .strictObject({
    /** Name of the mqtt uplink whose broker (url, TLS, credentials) carries fleet commands. */
    uplink: z.string(),
    topicPrefix: z
      .string()
      .min(1)
      .refine((t) => !/[+#\u0000]/.test(t), { message: 'must not contain + or #' })
      .default('sluice'),
    /** Keys whose signatures are accepted. At least one: a fleet section without keys would accept nothing. */
    trustedKeys: z.array(trustedKeySchema).min(1, 'needs at least one key (make one with `sluice keygen`)'),
    /** How long an applied config has to become healthy (uplinks connected, data flowing) before it is rolled back. */
    healthTimeout: duration().default(30_000),
    /** What "healthy" means after a config change (the fleet connection being up always counts). */
    healthCheck: z
      .strictObject({
        /** Every enabled uplink connected, and delivering when it has a backlog. */
        uplinks: z.boolean().default(true),
        /** Every enabled driver has at least one device up. */
        drivers: z.boolean().default(false),
        /** At least one event was ingested after the change. */
        ingest: z.boolean().default(false),
      })
      .prefault({}),
    /**
     * Version of this config. A fleet `config.set` must carry a higher one; at start the gateway runs
     * the last-known-good fleet config instead of this file when that one's version is higher.
     */
    configVersion: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0),
    /**
     * Refuse commands that name no `device`. Off by default: the contract's command fields do not
     * include it, so a command made to them alone is valid for every gateway trusting the key.
     */
    requireDevice: z.boolean().default(false),
    /** How far a command's `issuedAt` may lie ahead of this gateway's clock. */
    clockSkew: duration().default(300_000),
    /** Longest validity (`expiresAt - issuedAt`) a command may ask for. */
    maxCommandLifetime: duration().default(90 * 86_400_000),
    /** Commands waiting to run at most; more are refused as busy. */
    maxQueuedCommands: z.number().int().min(1).max(10_000).default(100),
  })
  .optional();

/** Built-in schedule actions; any command type except config.set may be scheduled too. */
export const SCHEDULE_ACTIONS = ['state', 'status'] as const;
/**
 * Accepted so that existing configs keep loading, and do nothing: `retention` (the ring log applies
 * `buffer.retention` by itself every second). The fleet agent logs a warning naming the schedule.
 */
export const OBSOLETE_SCHEDULE_ACTIONS: Record<string, string> = {
  retention: 'the ring log applies buffer.retention by itself every second',
};
const scheduledCommands = Object.keys(commandBodies).filter((t) => t !== 'config.set' && t !== 'config.get');

export const scheduleSchema = z
  .strictObject({
    name: name(),
    /** Cron expression (5 fields, or 6 with seconds first), in `timezone` (default: the system's). */
    cron: z.string().min(1),
    timezone: z.string().optional(),
    /**
     * `state` republishes the retained fleet state, `status` publishes the status report to
     * `<prefix>/<id>/status`; a command type
     * (`uplink.flush`, `log.level`, `driver.restart`, `ping`) runs that command with `body`.
     */
    action: z.string().min(1),
    body: z.record(z.string(), z.unknown()).optional(),
  })
  .superRefine((s, ctx) => {
    const check = cron.validateDetailed(s.cron);
    if (!check.valid) {
      const first = check.errors[0];
      ctx.addIssue({
        code: 'custom',
        path: ['cron'],
        message: `"${s.cron}" is not a cron expression (${first?.message ?? 'invalid'})`,
      });
    }
    if (s.timezone !== undefined) {
      try {
        new Intl.DateTimeFormat('en-US', { timeZone: s.timezone });
      } catch {
        ctx.addIssue({ code: 'custom', path: ['timezone'], message: `"${s.timezone}" is not a time zone` });
      }
    }
    if ((SCHEDULE_ACTIONS as readonly string[]).includes(s.action) || s.action in OBSOLETE_SCHEDULE_ACTIONS) {
      if (s.body !== undefined)
        ctx.addIssue({ code: 'custom', path: ['body'], message: `action "${s.action}" takes no body` });
      return;
    }
    if (!scheduledCommands.includes(s.action)) {
      ctx.addIssue({
        code: 'custom',
        path: ['action'],
        message: `must be one of ${[...SCHEDULE_ACTIONS, ...scheduledCommands].map((a) => `"${a}"`).join(', ')}`,
      });
      return;
    }
    const body = commandBodies[s.action as keyof typeof commandBodies].safeParse(s.body ?? {});
    if (!body.success) {
      for (const issue of body.error.issues) {
        ctx.addIssue({
          code: 'custom',
          path: ['body', ...issue.path.map(String)],
          message: issue.message.replace(/^Invalid input: /, ''),
        });
      }
    }
  });

export const schedulesSchema = z.array(scheduleSchema).default([]);

export type ScheduleConfig = z.output<typeof scheduleSchema>;
