import { describe, expect, it } from 'vitest';
import { filterSet, topicMatches } from './topics.js';

describe('topicMatches', () => {
  it.each([
    ['#', 'a/b/c', true],
    ['#', '$SYS/x', false],
    ['a/#', 'a', true],
    ['a/#', 'a/b/c', true],
    ['a/#', 'ab', false],
    ['a/+/c', 'a/b/c', true],
    ['a/+/c', 'a//c', true],
    ['a/+/c', 'a/b/d', false],
    ['a/+', 'a/b/c', false],
    ['+/+', 'a/b', true],
    ['+', '$SYS', false],
    ['sensors/s1/#', 'sensors/s2/temp', false],
    ['sensors/s1/#', 'sensors/s1/temp', true],
    ['a/b', 'a/b', true],
    ['a/b', 'a/bc', false],
    ['a/b/', 'a/b', false],
  ])('%s matches %s: %s', (filter, topic, expected) => {
    expect(topicMatches(filter, topic)).toBe(expected);
  });

  it('filterSet matches any of its filters', () => {
    const m = filterSet(['x/+', 'y/#']);
    expect(m('x/1')).toBe(true);
    expect(m('y/1/2')).toBe(true);
    expect(m('z')).toBe(false);
    expect(filterSet([])('a')).toBe(false);
  });
});
