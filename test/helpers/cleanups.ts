/** Teardown for tests that start real peers, servers and runners as they go. */
import { afterEach } from 'vitest';

/** A list a test pushes its teardowns onto; after each test they run, the last pushed first. */
export function cleanupsAfterEach(): (() => unknown)[] {
  const list: (() => unknown)[] = [];
  afterEach(async () => {
    for (const c of list.splice(0).reverse()) await c();
  });
  return list;
}
