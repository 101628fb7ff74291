/**
 * The one config schema (README "Configuration"): validation, defaults and the
 * TypeScript types all come from here. Each plugin folder owns the schema of its own options
 * (drivers/<type>/schema.ts, uplink/<type>/schema.ts) and this file composes them. Every object is
 * strict: an unknown key is an error, not silently ignored.
 */
import { z } from 'zod';
import { bufferSchema } from '../../buffer/schema.js';
import { driverSchema } from '../../drivers/schema.js';
import { localConsumersSchema } from '../../uplink/local/schema.js';
import { uplinkSchema } from '../../uplink/schema.js';
import { analyticsSchema } from '../analytics/schema.js';
import { compiled, rulesSchema } from '../rules/schema.js';
import { brokerSchema } from '../broker/schema.js';
import { isLoopback } from '../auth/origin.js';
import { fleetSchema, schedulesSchema } from '../fleet/schema.js';
import { duration, secret } from '../core/config-types.js';
import { sparkplugSchema } from '../sparkplug/ingest.js';

export const httpSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    host: z.string().default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(8080),
    /** Basic auth for the dashboard and API; required when the listener is not on loopback (see allowAnonymous). */
    auth: z.strictObject({ username: z.string().min(1), passwordHash: secret(z.string().min(1)) }).optional(),
    /** Serve the API without `auth` although the listener is not on loopback (an explicit opt-out, as Mosquitto 2). */
    allowAnonymous: z.boolean().default(false),
    /**
     * Clients on loopback need no credentials. Set false when a reverse proxy on the device forwards
     * other machines' requests (they would all arrive from 127.0.0.1): then `auth` applies to everyone.
     */
    trustLoopback: z.boolean().default(true),
    /**
     * Host names the API answers to (the `Host` header), against DNS rebinding. IP literals and
     * loopback names are always allowed; a leading "." allows a domain and its subdomains. Unset:
     * checked only when the listener is on loopback (any host name when it is not).
     */
    allowedHosts: z.array(z.string().min(1).max(253)).max(64).optional(),
    /** Open sockets at once; more are closed on accept (counted in status, logged). */
    maxConnections: z.number().int().min(1).max(65_535).default(256),
    /** A socket must send a complete request head within this time of connecting (idle, slow-loris). */
    headersTimeout: duration().default(10_000),
    /** An idle keep-alive socket is closed after this. */
    keepAliveTimeout: duration().default(5_000),
    /** A request body must arrive within this. */
    requestTimeout: duration().default(30_000),
    /** Local consumers of the log: `GET /api/events?consumer=NAME` + `POST /api/events/ack` (uplink/local). */
    consumers: localConsumersSchema,
  })
  .superRefine((h, ctx) => {
    if (!h.enabled || h.auth || h.allowAnonymous) return;
    if (!isLoopback(h.host)) {
      ctx.addIssue({
        code: 'custom',
        path: ['auth'],
        message: `is required: http.host "${h.host}" is not a loopback address, so other machines reach the API. Set http.auth (make the hash with \`sluice passwd\`), or http.allowAnonymous: true to serve it without credentials`,
      });
    } else if (!h.trustLoopback) {
      ctx.addIssue({
        code: 'custom',
        path: ['auth'],
        message: 'is required with http.trustLoopback: false (or set http.allowAnonymous: true)',
      });
    }
  })
  .prefault({});

export const gatewaySchema = z
  .strictObject({
    id: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'must be 1-64 letters, digits, "-", "_" or "."')
      .default('gw-01'),
    dataDir: z.string().min(1).default('./data'),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
  })
  .prefault({});

export const configSchema = z
  .strictObject({
    gateway: gatewaySchema,
    broker: brokerSchema,
    drivers: z.array(driverSchema).default([]),
    buffer: bufferSchema,
    analytics: analyticsSchema,
    /** Rules: CEL expressions, drop/derive, temporal patterns (src/rules/README.md). */
    rules: rulesSchema,
    uplinks: z.array(uplinkSchema).default([]),
    fleet: fleetSchema,
    schedules: schedulesSchema,
    http: httpSchema,
    /** Sparkplug B ingest at the local broker (src/sparkplug/README.md). */
    sparkplug: sparkplugSchema,
  })
  .superRefine((cfg, ctx) => {
    for (const [key, list] of [
      ['drivers', cfg.drivers],
      ['uplinks', cfg.uplinks],
      ['rules', cfg.rules],
    ] as const) {
      const seen = new Set<string>();
      list.forEach((item, i) => {
        if (seen.has(item.name))
          ctx.addIssue({ code: 'custom', path: [key, i, 'name'], message: `duplicate name "${item.name}"` });
        seen.add(item.name);
      });
    }
    cfg.uplinks.forEach((u, i) => {
      if (u.where === undefined) return;
      try {
        compiled(u.where);
      } catch (err) {
        ctx.addIssue({ code: 'custom', path: ['uplinks', i, 'where'], message: (err as Error).message });
      }
    });
    if (cfg.fleet?.uplink && !cfg.uplinks.some((u) => u.name === cfg.fleet?.uplink && u.type === 'mqtt')) {
      ctx.addIssue({
        code: 'custom',
        path: ['fleet', 'uplink'],
        message: `names no mqtt uplink "${cfg.fleet.uplink}"`,
      });
    }
  });

/** The config as written (before defaults). */
export type ConfigInput = z.input<typeof configSchema>;
/** The config with every default filled in: what the gateway runs on. */
export type Config = z.output<typeof configSchema>;
export type BufferConfig = Config['buffer'];
export { bufferSchema };
