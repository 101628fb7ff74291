/** MQTT topic filter matching (`+` one level, `#` the rest), as the broker applies it. */

/** A compiled matcher for one filter. Topics starting with `$` match only filters that name them. */
export function topicMatcher(filter: string): (topic: string) => boolean {
  if (!filter.includes('+') && !filter.includes('#')) return (topic) => topic === filter;
  const f = filter.split('/');
  return (topic) => {
    if (topic.charCodeAt(0) === 36 /* $ */ && (f[0] === '+' || f[0] === '#')) return false;
    const t = topic.split('/');
    for (let i = 0; i < f.length; i++) {
      if (f[i] === '#') return true;
      if (i >= t.length) return false;
      if (f[i] !== '+' && f[i] !== t[i]) return false;
    }
    return t.length === f.length;
  };
}
