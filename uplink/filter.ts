/** The uplink's topic/kind filter, compiled once into the predicate `LogReader.next` takes. */
import type { EventKind } from '../src/core/event.js';

export interface FilterOptions {
  kinds?: EventKind[];
  topics?: string[];
}

/** MQTT topic-filter matching (`+` one level, `#` the rest, including the parent level). */
export function topicMatches(filter: string, topic: string): boolean {
  if (filter === '#') return !topic.startsWith('$');
  const f = filter.split('/');
  const t = topic.split('/');
  // MQTT: wildcards at the first level do not match topics starting with `$`.
  if ((f[0] === '+' || f[0] === '#') && topic.startsWith('$')) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/** A condition on the whole event (the uplink's `where:`), given as the envelope's JSON. */
export type EventPredicate = (json: string) => boolean;

/**
 * Undefined when everything passes (the reader then skips the per-event call). `where` runs last,
 * only on events the kinds and topics let through (it parses the envelope).
 */
export function compileFilter(
  opts: FilterOptions | undefined,
  where?: EventPredicate,
): ((kind: EventKind, topic: string, json: string) => boolean) | undefined {
  if ((!opts || (!opts.kinds && !opts.topics)) && !where) return undefined;
  const kinds = opts?.kinds ? new Set(opts.kinds) : undefined;
  const topics = opts?.topics;
  return (kind, topic, json) =>
    (!kinds || kinds.has(kind)) && (!topics || topics.some((f) => topicMatches(f, topic))) && (!where || where(json));
}
