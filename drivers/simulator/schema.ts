/** Options of the simulator driver: synthetic sensors for demos, tests and benchmarks. */
import { z } from 'zod';
import { duration, name, topicName, republishSchema } from '../../src/core/config-types.js';

export const simulatedSensorSchema = z.strictObject({
  topic: topicName(),
  /** Mean value. */
  base: z.number().default(20),
  /** Standard deviation of Gaussian noise. */
  noise: z.number().min(0).default(0.2),
  /** Amplitude of a daily (24 h) sine cycle. */
  dailyAmplitude: z.number().default(0),
  /** Linear drift per hour. */
  driftPerHour: z.number().default(0),
  /** Probability per reading of a spike of `spikeSize`. */
  spikeProbability: z.number().min(0).max(1).default(0),
  spikeSize: z.number().default(10),
  /** Probability per reading that the sensor sticks at its value for `flatlineReadings` readings. */
  flatlineProbability: z.number().min(0).max(1).default(0),
  flatlineReadings: z.number().int().min(1).default(20),
  unit: z.string().optional(),
});

export const simulatorSchema = z.strictObject({
  name: name(),
  type: z.literal('simulator'),
  enabled: z.boolean().default(true),
  /** Also publish each reading on the gateway's own broker, once durable (off unless set). */
  republish: republishSchema.optional(),
  interval: duration().default(1000),
  sensors: z
    .array(simulatedSensorSchema)
    .min(1)
    .default([{ topic: 'sim/temp', base: 20, noise: 0.2 }] as never),
  /** Deterministic noise for tests. */
  seed: z.number().int().optional(),
});
export type SimulatorConfig = z.output<typeof simulatorSchema>;
