/** Options of the local MQTT broker (`broker:` in the config). */
import { z } from 'zod';
import { secret, size, topicFilter } from '../core/config-types.js';

export const listenerSchema = z.strictObject({
  host: z.string().default('127.0.0.1'),
  port: z.number().int().min(0).max(65535),
  /** TLS server certificate; `ca` plus `requestCert` asks clients for certificates. Paths to PEM files. */
  tls: z
    .strictObject({
      cert: z.string(),
      key: z.string(),
      ca: z.string().optional(),
      requestCert: z.boolean().default(false),
    })
    .optional(),
  /** MQTT over WebSocket on this listener instead of plain TCP. */
  ws: z.boolean().default(false),
});

export const userSchema = z.strictObject({
  username: z.string().min(1),
  /** `scrypt$<N>$<r>$<p>$<salt b64>$<hash b64>`, made with `sluice passwd`; never a plaintext password. */
  passwordHash: secret(
    z.string().regex(/^scrypt\$/, 'must be a scrypt hash (make one with `sluice passwd`), not a plaintext password'),
  ),
  /** Topic filters this user may publish to. */
  publish: z.array(topicFilter()).default([]),
  /** Topic filters this user may subscribe to. */
  subscribe: z.array(topicFilter()).default([]),
  /** Bearer token hash for `POST /api/events` (the same ACLs apply), made with `sluice passwd`. */
  tokenHash: secret(z.string().regex(/^scrypt\$/)).optional(),
  /** TLS client certificate common name that logs in as this user. */
  certCN: z.string().optional(),
});

export const brokerSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    listeners: z
      .array(listenerSchema)
      .min(1)
      .default([{ host: '127.0.0.1', port: 1883, ws: false }]),
    /**
     * Anonymous clients. Unset: allowed only when every listener is on loopback (as Mosquitto 2
     * does); a listener on any other address then requires credentials.
     */
    allowAnonymous: z.boolean().optional(),
    users: z.array(userSchema).default([]),
    maxPayloadBytes: size().default(256 * 1024),
    /** Topic filters whose publishes become events. */
    ingest: z.array(topicFilter()).default(['#']),
    maxConnections: z.number().int().min(1).default(2000),
    /**
     * Failed logins per client address per minute before further attempts are refused (MQTT,
     * HTTP ingest tokens and HTTP basic auth together; an attempt counts from before its check).
     */
    maxAuthFailuresPerMinute: z.number().int().min(1).default(10),
    /**
     * Failed logins per username per minute, from all addresses together; an address where that
     * user logged in successfully in the last day is exempt (a working device is never locked out).
     */
    maxAuthFailuresPerUserPerMinute: z.number().int().min(1).default(30),
    /** Longest MQTT client id accepted, in bytes (23 is the minimum MQTT 3.1.1 requires). */
    maxClientIdLength: z.number().int().min(23).max(65535).default(256),
    /** Subscriptions one client may hold (SUBACK 0x80 past it). */
    maxSubscriptionsPerClient: z.number().int().min(1).default(100),
    /** Persistent sessions (clean session = false) the broker keeps at most (CONNACK 3 past it). */
    maxPersistentSessions: z.number().int().min(1).default(1000),
    /** Retained messages kept at most, and their topic + payload bytes together. */
    maxRetainedMessages: z.number().int().min(0).default(10_000),
    maxRetainedBytes: size().default(16 * 1024 * 1024),
  })
  .prefault({});

export type BrokerConfig = z.output<typeof brokerSchema>;
export type BrokerUser = z.output<typeof userSchema>;
