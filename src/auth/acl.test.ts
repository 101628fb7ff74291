import { describe, expect, it } from 'vitest';
import { topicMatches } from '../core/topics.js';
import { filterCovers } from './acl.js';

describe('filterCovers', () => {
  it.each([
    // + is one level: it never grants # (the escape a red-team review found) nor a deeper filter
    [['+'], '#', false],
    [['+'], '+', true],
    [['+'], 'a', true],
    [['+'], 'a/b', false],
    [['+'], '+/+', false],
    [['+'], 'a/#', false],
    [['status/+'], 'status/#', false],
    [['status/+'], 'status/+', true],
    [['status/+'], 'status/x', true],
    [['status/+'], 'status', false],
    [['status/+'], 'status/x/y', false],
    [['status/#'], 'status/+', true],
    [['status/#'], 'status/#', true],
    [['status/#'], 'status', true],
    [['status/#'], 'status/a/b/c', true],
    [['status/#'], 'statusx', false],
    [['status/#'], '+/x', false],
    [['status/#'], '#', false],
    // a/# matches a: the ACL a grants a, but not a/#
    [['a'], 'a', true],
    [['a'], 'a/#', false],
    [['a/#'], 'a', true],
    [['a/+'], 'a/#', false],
    [['a/+'], 'a', false],
    // # grants everything except $ topics
    [['#'], '#', true],
    [['#'], '+/+/x', true],
    [['#'], '$SYS/#', false],
    [['#'], '$SYS/broker/x', false],
    [['+/#'], '$SYS/x', false],
    [['+/x'], '$SYS/x', false],
    [['$SYS/#'], '$SYS/broker/clients', true],
    [['$SYS/#'], '#', false],
    [['$SYS/+'], '$SYS/x', true],
    // a literal covers only itself; + in a subscription needs + or # in the ACL
    [['a/b'], 'a/+', false],
    [['a/+/c'], 'a/b/c', true],
    [['a/+/c'], 'a/+/c', true],
    [['a/+/c'], 'a/+/+', false],
    [['a/b/c'], 'a/b/c', true],
    [['a//c'], 'a/+/c', false],
    [['a/+/c'], 'a//c', true],
    // the ACL is a union
    [['a', 'a/+/#'], 'a/#', true],
    [['a', 'a/+', 'a/+/+/#'], 'a/#', true],
    [['a', 'a/+', 'a/+/+'], 'a/#', false],
    [['a/x', 'a/y'], 'a/+', false],
    [['a/x', 'a/+'], 'a/+', true],
    [['+', '+/+/#'], '#', true], // +/+/# matches its parent level, +/+
    [['+', '+/+/+/#'], '#', false],
    [['+', '+/+', '+/+/#'], '#', true],
    [[], 'a', false],
    [[], '#', false],
  ])('ACL %j grants %s: %s', (acl, sub, expected) => {
    expect(filterCovers(acl, sub)).toBe(expected);
  });

  it('agrees with topic matching on every topic of a small universe (random ACLs and filters)', () => {
    // Levels drawn from a few literals, wildcards and a $ literal; topics from the literals plus
    // one the filters never name (standing for every other value a level can take).
    const levels = ['a', 'b', '$s', '+', '#'];
    const topicLevels = ['a', 'b', '$s', 'z', ''];
    let seed = 42;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const randomFilter = (): string => {
      const n = 1 + rnd(3);
      const out: string[] = [];
      for (let i = 0; i < n; i++) {
        const l = levels[rnd(levels.length)];
        out.push(l);
        if (l === '#') break;
      }
      return out.join('/');
    };
    const topics: string[] = [];
    const build = (prefix: string[]) => {
      if (prefix.length > 0) topics.push(prefix.join('/'));
      if (prefix.length === 5) return;
      for (const l of topicLevels) build([...prefix, l]);
    };
    build([]);
    for (let trial = 0; trial < 400; trial++) {
      const acl = Array.from({ length: 1 + rnd(3) }, randomFilter);
      const sub = randomFilter();
      // Topics deeper than every filter behave as the deepest ones here, so 5 levels decide.
      const counterexample = topics.find((t) => topicMatches(sub, t) && !acl.some((f) => topicMatches(f, t)));
      expect(filterCovers(acl, sub), `ACL ${JSON.stringify(acl)} vs ${sub}: ${counterexample}`).toBe(
        counterexample === undefined,
      );
    }
  });
});
