/** Analytics rules: which topics are watched, which field, by which detector. */
import { z } from 'zod';
import { name, topicFilter } from '../config/types.js';

export const analyticsRuleSchema = z.strictObject({
  name: name(),
  match: topicFilter(),
  /** Path into the payload (`value`, `a.b.c`); without one, a numeric payload or its `value`. */
  field: z.string().optional(),
  detector: z.string().default('auto'),
});

export const analyticsSchema = z.array(analyticsRuleSchema).default([]);
export type AnalyticsConfig = z.output<typeof analyticsSchema>;
