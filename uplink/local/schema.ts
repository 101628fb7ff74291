/**
 * Options of the local consumers (`GET /api/events?consumer=NAME`, `POST /api/events/ack`): the bounds
 * that keep applications on the device or the LAN from growing the gateway's memory.
 */
import { z } from 'zod';
import { duration, name, size } from '../../src/core/config-types.js';

export const localConsumersSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    /**
     * Only these consumer names are served. Unset: declared names plus any valid name an
     * authenticated (or trusted loopback) client reads first, up to `maxConsumers`.
     */
    consumers: z.array(name()).optional(),
    /** Distinct consumer names (each a persisted cursor `local:NAME` in the ring log). */
    maxConsumers: z.number().int().min(1).max(256).default(16),
    /** Unacknowledged batches per consumer name; a reader asking for more waits for acks. */
    maxInFlight: z.number().int().min(1).max(1024).default(32),
    /** Concurrent open requests (streams and long polls) over all consumers. */
    maxRequests: z.number().int().min(1).max(1024).default(64),
    /** A batch not acknowledged within this time is handed out again (to any reader of the name). */
    ackTimeout: duration().default(30_000),
    /** Largest batch a request may ask for (`max=`), in events and bytes of event JSON. */
    maxBatchEvents: z.number().int().min(1).max(100_000).default(5000),
    maxBatchBytes: size().default(1024 * 1024),
    /**
     * A consumer with no open request and no ack for this long is released: its cursor is dropped so
     * it no longer holds back eviction (or intake, with onFull: reject) and frees its name's slot.
     */
    idleTimeout: duration()
      .pipe(z.number().min(1000, 'must be at least 1s'))
      .default(600_000),
    /** Longest `wait=` of a long poll. */
    maxWait: duration().default(60_000),
  })
  .prefault({});
export type LocalConsumersConfig = z.output<typeof localConsumersSchema>;
