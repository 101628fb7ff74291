/** Small helpers of the uplink runner (runner.ts). */
import { scrubCredentials } from '../src/core/scrub.js';
import type { StoredEvent } from '../src/core/event.js';

/** Errors name the peer's URL; its user-info password must not reach status or logs. */
export function nullableScrub(text: string | null): string | null {
  return text === null ? null : scrubCredentials(text);
}

export function maxTs(events: StoredEvent[]): number | null {
  let max: number | null = null;
  for (const e of events) if (max === null || e.ts > max) max = e.ts;
  return max;
}

export function minTs(events: StoredEvent[]): number | null {
  let min: number | null = null;
  for (const e of events) if (min === null || e.ts < min) min = e.ts;
  return min;
}

export function sizeOf(events: StoredEvent[]): number {
  let n = 0;
  for (const e of events) n += e.json.length + 1;
  return n;
}

export function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function withDeadline<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}
