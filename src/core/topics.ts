/** MQTT topic filter matching (`+` one level, `#` the rest), as used by ACLs, ingest filters and analytics rules. */

export function topicMatches(filter: string, topic: string): boolean {
  if (filter === '#') return !topic.startsWith('$');
  let fi = 0;
  let ti = 0;
  const fl = filter.length;
  const tl = topic.length;
  // Topics starting with $ are not matched by a leading wildcard (MQTT-4.7.2-1).
  if (topic.charCodeAt(0) === 36 && (filter.charCodeAt(0) === 43 || filter.charCodeAt(0) === 35)) return false;
  while (fi < fl) {
    const fc = filter.charCodeAt(fi);
    if (fc === 35 /* # */) return true;
    if (fc === 43 /* + */) {
      while (ti < tl && topic.charCodeAt(ti) !== 47) ti++;
      fi++;
    } else {
      if (ti >= tl) {
        // "a/#" also matches "a"
        return filter.charCodeAt(fi) === 47 && filter.charCodeAt(fi + 1) === 35 && fi + 2 === fl;
      }
      if (fc !== topic.charCodeAt(ti)) return false;
      fi++;
      ti++;
    }
  }
  return ti === tl;
}

/** A compiled list of filters: `matches(topic)` is true when any filter matches. */
export function filterSet(filters: readonly string[]): (topic: string) => boolean {
  if (filters.includes('#')) return (t) => !t.startsWith('$');
  if (filters.length === 0) return () => false;
  return (t) => {
    for (const f of filters) if (topicMatches(f, t)) return true;
    return false;
  };
}
