/**
 * `writable:` on a driver point: the point may be written, within these limits. A point without it
 * is never written, whoever asks. `writable: true` allows any value of the point's type, no more
 * often than the type allows; every other option narrows that.
 */
import { z } from 'zod';
import { duration } from '../../src/core/config-types.js';

export const writableObject = z.strictObject({
  /** Smallest and largest value accepted (in the point's scaled units). */
  min: z.number().optional(),
  max: z.number().optional(),
  /** The only values accepted (e.g. `[0, 1]`, `["open", "closed"]`). */
  allowed: z.array(z.union([z.number(), z.boolean(), z.string()])).min(1).max(256).optional(),
  /** At most one write of this point per this interval; a faster one is refused (0: no limit). */
  minInterval: duration().default(0),
  /** Read the point back after writing and fail the write when the device holds another value. */
  verify: z.boolean().default(false),
  /**
   * How long a write to a device that is down may wait for it to come back. 0 (the default): it
   * fails at once. A waiting write is replaced by a newer one for the same point.
   */
  queueFor: duration().default(0),
});

export const writableSchema = z
  .union([z.literal(true), writableObject])
  .transform((w) => (w === true ? writableObject.parse({}) : w))
  .superRefine((w, ctx) => {
    if (w.min !== undefined && w.max !== undefined && w.min > w.max)
      ctx.addIssue({ code: 'custom', path: ['min'], message: `min (${w.min}) is above max (${w.max})` });
  });

export type WritableSpec = z.output<typeof writableObject>;
export type WriteValue = number | boolean | string | number[] | boolean[] | string[];
