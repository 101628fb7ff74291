/**
 * Local actions: an anomaly publishes a configured message on the local broker (a relay, a valve,
 * an alarm), or asks for a write to a device point, so a control loop closes with no cloud. Each action is rate-limited on its own
 * (`minInterval`): a flapping sensor gets one message per interval, the rest are counted as
 * suppressed. Publishing is fire-and-forget; a failure is the publisher's to log.
 */
import type { ActionSpec } from './schema.js';

export interface ActionContext {
  rule: string;
  topic: string;
  detector: string;
  /** The reading's number, or a device vector's values by variable. */
  value: number | Record<string, number>;
  score: number;
  reason: string;
  /** The anomaly event's payload (the default message). */
  payload: unknown;
}

export class Action {
  private lastAt = -Infinity;
  published = 0;
  suppressed = 0;

  constructor(private readonly spec: ActionSpec) {}

  /**
   * The message to publish (or the write to ask for); 'suppressed' when rate-limited; undefined
   * when the anomaly does not trigger it.
   */
  fire(
    a: ActionContext,
    now: number,
  ): { topic: string; payload: string } | { write: NonNullable<ActionSpec['write']> } | 'suppressed' | undefined {
    const s = this.spec;
    if (a.score < s.minScore) return undefined;
    if (s.detectors && !s.detectors.includes(a.detector as (typeof s.detectors)[number])) return undefined;
    if (now - this.lastAt < s.minInterval) {
      this.suppressed++;
      return 'suppressed';
    }
    this.lastAt = now;
    this.published++;
    if (s.write) return { write: s.write };
    const topic = s.topic!.replaceAll('{topic}', a.topic).replaceAll('{rule}', a.rule);
    let payload: string;
    if (s.payload === undefined) payload = JSON.stringify(a.payload);
    else if (typeof s.payload === 'string') payload = fill(s.payload, a, (v) => v);
    // Inside JSON, replacements are escaped as JSON string content so the message stays valid JSON.
    else payload = fill(JSON.stringify(s.payload), a, (v) => JSON.stringify(v).slice(1, -1));
    return { topic, payload };
  }
}

function fill(template: string, a: ActionContext, esc: (v: string) => string): string {
  return template.replace(/\{(rule|topic|detector|value|score|reason)\}/g, (_, k: keyof ActionContext) => {
    const v = a[k];
    if (typeof v === 'object') return esc(JSON.stringify(v));
    return esc(typeof v === 'number' ? String(Math.round(v * 1e6) / 1e6) : String(v));
  });
}
