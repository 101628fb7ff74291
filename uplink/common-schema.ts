/**
 * Options every uplink has, whatever its protocol: batching, retries, filtering, bandwidth, transmit
 * windows, live first, TLS, reconnect and dead letters. Spread `commonUplinkOptions` into each sink's
 * `z.strictObject({...})`; the shared runner (uplink/runner.ts) reads them, a sink reads only its own.
 */
import cron from 'node-cron';
import { z } from 'zod';
import { duration, name, secret, size, topicFilter } from '../src/core/config-types.js';

/**
 * The outbound proxy of an HTTP or WebSocket uplink: a URL (`http://proxy.plant:3128`, credentials
 * in it allowed), `none` to ignore the environment, or unset for `HTTPS_PROXY`/`NO_PROXY`.
 */
export const proxySchema = secret(
  z.union([z.literal('none'), z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// proxy URL, or none' })]),
).optional();

export const tlsSchema = z
  .strictObject({
    /** PEM file paths. */
    ca: z.string().optional(),
    cert: z.string().optional(),
    key: z.string().optional(),
    /** Passphrase of the client key, if it is encrypted. */
    passphrase: secret(z.string()).optional(),
    /** Server name for SNI and certificate checks when it differs from the URL's host. */
    servername: z.string().optional(),
    rejectUnauthorized: z.boolean().default(true),
  })
  .refine((t) => (t.cert === undefined) === (t.key === undefined), {
    message: 'cert and key go together (a client certificate needs its key)',
  })
  .optional();
export type TlsOptions = z.output<typeof tlsSchema>;

/** A node-cron expression (5 fields, or 6 with seconds). */
export const cronExpression = () =>
  z.string().refine((e) => cron.validate(e), { message: 'is not a cron expression (e.g. "* 0-5 * * *")' });

export const commonUplinkOptions = {
  name: name(),
  enabled: z.boolean().default(true),
  batch: z
    .strictObject({
      maxEvents: z.number().int().min(1).max(100_000).default(1000),
      maxBytes: size().default(512 * 1024),
      /** How long a partial batch may wait for more events before it is sent. */
      maxDelay: duration().default(100),
    })
    .prefault({}),
  gzip: z.boolean().default(false),
  retry: z
    .strictObject({
      initialDelay: duration().default(500),
      maxDelay: duration().default(60_000),
    })
    .prefault({}),
  /** Reconnect delay after a lost connection: random in [min, max] (jitter, so a fleet does not stampede the cloud). */
  reconnect: z
    .strictObject({
      minDelay: duration().default(1000),
      maxDelay: duration().default(30_000),
    })
    .prefault({}),
  /** Forward only these event kinds / topics (e.g. only anomalies and aggregates over a metered link). */
  filter: z
    .strictObject({
      kinds: z.array(z.enum(['reading', 'anomaly', 'aggregate', 'status', 'audit', 'alarm', 'derived'])).optional(),
      topics: z.array(topicFilter()).optional(),
    })
    .optional(),
  /**
   * Forward only events for which this CEL expression holds (e.g. `payload.rms > 2.0`); it sees the
   * event as rules do (src/rules/README.md). Checked at config load; the gateway compiles it.
   */
  where: z.string().min(1).optional(),
  /** Bandwidth cap in bytes per second of encoded batches (after gzip); unset: no cap. */
  maxBytesPerSecond: size().optional(),
  /**
   * Transmit windows: cron expressions whose matching minutes are the windows (e.g. `"* 0-5 * * *"`
   * is 00:00-05:59 local time). Unset: always open. Outside every window the uplink sends nothing and
   * events wait in the ring log; `flush` (or a fleet command) sends the backlog now.
   */
  transmitWindows: z.array(cronExpression()).min(1).optional(),
  /**
   * Where an uplink with no stored cursor starts: `oldest` (everything the log holds; the default,
   * at least once for whatever was stored before the uplink existed), `latest` (only events stored
   * from now; for metered links), or a duration (`2h`: events stored in the last two hours). Once the
   * uplink has a cursor this is ignored.
   */
  start: z.union([z.enum(['oldest', 'latest']), duration()]).default('oldest'),
  /** Fresh events and anomalies go before the backlog, which keeps `backlogShare` of the batches so it still drains. */
  liveFirst: z.boolean().default(false),
  backlogShare: z.number().min(0.01).max(1).default(0.25),
  /** Events the peer rejects for good are kept here, under `<dataDir>/dead-letter/<uplink>.ndjson` (bounded). */
  deadLetter: z.strictObject({ maxBytes: size().default(16 * 1024 ** 2) }).prefault({}),
  tls: tlsSchema,
};

/** The common options as one schema (the runner's view of any uplink; also handy in tests). */
export const commonUplinkSchema = z.strictObject(commonUplinkOptions);
/** What the runner reads of any uplink's config (every member of the `uplinks` union has these). */
export type CommonUplinkConfig = z.output<typeof commonUplinkSchema> & { type: string };
