/** An event as rules see it, and its CEL bindings. */
import { type Bindings, celValue } from './cel.js';

/** An event as rules see it (`seq` null before it is stored: drop rules). */
export interface RuleEvent {
  seq: number | null;
  ts: number;
  topic: string;
  source?: string;
  payload: unknown;
  kind: string;
  deviceTs?: number;
  meta?: Record<string, unknown>;
}

/** An event's CEL bindings (built once per event, shared by every rule that looks at it). */
export function bind(e: RuleEvent): Bindings {
  return {
    topic: e.topic,
    source: e.source ?? '',
    payload: celValue(e.payload),
    kind: e.kind,
    ts: e.ts,
    seq: e.seq,
    deviceTs: e.deviceTs ?? null,
    segments: celValue(e.topic.split('/')),
    meta: celValue(e.meta ?? {}),
  };
}
