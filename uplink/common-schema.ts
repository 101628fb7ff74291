/** Options every uplink has, whatever its protocol: batching, retries, filtering. Spread into each sink's schema. */
import { z } from 'zod';
import { duration, name, size, topicFilter } from '../src/config/types.js';

export const tlsSchema = z
  .strictObject({
    /** PEM file paths. */
    ca: z.string().optional(),
    cert: z.string().optional(),
    key: z.string().optional(),
    rejectUnauthorized: z.boolean().default(true),
  })
  .optional();

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
  /** Forward only these event kinds / topics (e.g. only anomalies and aggregates over a metered link). */
  filter: z
    .strictObject({
      kinds: z.array(z.enum(['reading', 'anomaly', 'aggregate', 'status'])).optional(),
      topics: z.array(topicFilter()).optional(),
    })
    .optional(),
  tls: tlsSchema,
};
