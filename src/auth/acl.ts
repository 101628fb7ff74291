/**
 * Topic ACLs: which subscriptions a list of allowed filters grants.
 *
 * A subscription filter is itself a set of topics, so it is allowed only when every topic it can
 * match is matched by the ACL: `filterCovers(acl, sub)`. Matching the ACL against the
 * subscription's text as if it were a topic name (what the broker did) let `+` grant `#` and
 * `status/+` grant `status/#`.
 *
 * Rules (MQTT 3.1.1 section 4.7):
 * - `+` matches exactly one level (possibly empty), `#` the parent level and any number below it
 *   (`a/#` matches `a`, `a/b`, `a/b/c`);
 * - a filter that starts with a wildcard does not match topics starting with `$` (`$SYS/...`), so
 *   an ACL of `#` grants no `$` subscription, and a subscription starting with a wildcard never
 *   needs a `$` grant;
 * - the ACL is a union: `a/#` is granted by `["a", "a/+/#"]` together, though by neither alone.
 *   For a subscription without `#` one filter must cover it alone (a `+` level stands for values
 *   no literal in a finite ACL names), so only the `#` tail is split, one level at a time, and the
 *   split stops below the deepest ACL filter (past it only an ACL filter ending in `#` can help).
 */

type Levels = readonly string[];

/**
 * Does ACL filter `acl` match every topic that filter `sub` matches? Both are split into levels.
 * `sub` without a trailing `#` matches topics of exactly its length; with one, its parent level
 * and everything below.
 */
function singleCovers(acl: Levels, sub: Levels): boolean {
  const subHash = sub.length > 0 && sub[sub.length - 1] === '#';
  const subFixed = subHash ? sub.length - 1 : sub.length;
  for (let i = 0; i < subFixed; i++) {
    const a = acl[i];
    if (a === undefined) return false; // the ACL ends: it matches nothing this deep
    const s = sub[i];
    // A wildcard in the first level of the ACL does not match `$` topics.
    if (i === 0 && (a === '+' || a === '#') && s !== '+' && s.startsWith('$')) return false;
    if (a === '#') return true;
    if (a === '+') continue;
    if (s === '+' || a !== s) return false; // a literal covers only itself
  }
  // Every fixed level is covered; what remains of the ACL must match the rest of the subscription.
  const rest = acl.length - subFixed;
  if (subHash) {
    // `sub` matches its parent level (the topics of length subFixed) and everything below: only `#` does.
    return rest === 1 && acl[subFixed] === '#';
  }
  // Topics of exactly subFixed levels: the ACL has the same length, or ends in `#` one level deeper.
  return rest === 0 || (rest === 1 && acl[subFixed] === '#');
}

/** A compiled subscribe ACL: `covers(filter)` is true when the ACL grants that subscription. */
export function aclCovers(filters: readonly string[]): (subscription: string) => boolean {
  const acl = filters.map((f) => f.split('/'));
  const deepest = acl.reduce((n, a) => Math.max(n, a.length), 0);
  const coversLevels = (sub: Levels): boolean => {
    if (acl.some((a) => singleCovers(a, sub))) return true;
    if (sub[sub.length - 1] !== '#') return false;
    // `P/#` = the topics `P` matches exactly, plus those `P/+/#` matches. The first part is empty
    // when P is empty (`#` alone: there is no zero-level topic).
    const prefix = sub.slice(0, -1);
    if (prefix.length >= deepest) return false; // only an ACL `#` tail reaches this deep, and none covered it
    if (prefix.length > 0 && !acl.some((a) => singleCovers(a, prefix))) return false;
    return coversLevels([...prefix, '+', '#']);
  };
  return (subscription) => coversLevels(subscription.split('/'));
}

/** One-off form of `aclCovers`. */
export function filterCovers(filters: readonly string[], subscription: string): boolean {
  return aclCovers(filters)(subscription);
}
