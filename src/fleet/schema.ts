/** Fleet management (signed commands over the fleet MQTT uplink) and schedules. */
import { z } from 'zod';
import { duration } from '../config/types.js';

export const fleetSchema = z
  .strictObject({
    /** Name of the mqtt uplink whose connection carries fleet commands. */
    uplink: z.string(),
    topicPrefix: z.string().default('sluice'),
    trustedKeys: z.array(z.strictObject({ keyId: z.string().min(1), publicKey: z.string().min(1) })).default([]),
    healthTimeout: duration().default(30_000),
  })
  .optional();

export const schedulesSchema = z
  .array(
    z.strictObject({
      name: z.string().min(1),
      cron: z.string().min(1),
      action: z.string().min(1),
    }),
  )
  .default([]);
