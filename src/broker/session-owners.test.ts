import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/peers.js';
import { SessionOwners } from './session-owners.js';

describe('SessionOwners', () => {
  const dirs: { cleanup(): void }[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => d.cleanup()));
  const file = () => {
    const d = tempDir('sluice-owners-');
    dirs.push(d);
    return join(d.path, 'data', 'broker-sessions.json');
  };

  it('keeps the owner of a persistent session across a reload, and lets the owner end it', async () => {
    const f = file();
    const a = new SessionOwners(f, 10);
    await a.load();
    expect(a.check('valve', 's1', true)).toBe('ok');
    await a.connected('valve', 's1', true);
    const b = new SessionOwners(f, 10);
    await b.load();
    expect(b.check('valve', 's2', true)).toBe('owned_by_another');
    expect(b.check('valve', 's2', false)).toBe('owned_by_another'); // a clean connect would wipe it
    expect(b.check('valve', '', false)).toBe('owned_by_another');
    expect(b.check('valve', 's1', false)).toBe('ok');
    await b.connected('valve', 's1', false);
    expect(JSON.parse(readFileSync(f, 'utf8'))).toEqual({ owners: {} });
    expect(b.check('valve', 's2', true)).toBe('ok');
  });

  it('group-commits a burst of new sessions, every one on disk when its connect resolves', async () => {
    const f = file();
    const o = new SessionOwners(f, 100);
    await Promise.all(Array.from({ length: 50 }, (_, i) => o.connected(`c${i}`, 'u', true)));
    expect(Object.keys(JSON.parse(readFileSync(f, 'utf8')).owners)).toHaveLength(50);
  });

  it('refuses new persistent sessions past its bound, not clean ones or known ones', async () => {
    const o = new SessionOwners(undefined, 2);
    await o.connected('a', 'u', true);
    await o.connected('b', 'u', true);
    expect(o.check('c', 'u', true)).toBe('full');
    expect(o.check('c', 'u', false)).toBe('ok');
    expect(o.check('a', 'u', true)).toBe('ok');
  });

  it('makes room only by dropping a session whose owner has not connected for 30 days', async () => {
    const evicted: string[] = [];
    const day = 86_400_000;
    const o = new SessionOwners(undefined, 2, undefined, (id) => evicted.push(id));
    await o.connected('old', 'u', true, 0);
    await o.connected('live', 'u', true, 0);
    await o.connected('old', 'u', true, 10 * day); // seen again: no longer the oldest
    expect(o.check('new', 'x', true, 35 * day)).toBe('ok'); // 'live' unseen for 35 days
    await o.connected('new', 'x', true, 35 * day);
    expect(evicted).toEqual(['live']);
    expect(o.check('newer', 'x', true, 36 * day)).toBe('full'); // 'old' seen 26 days ago
  });

  it('sets an unreadable file aside and starts unowned', async () => {
    const f = file();
    const o = new SessionOwners(f, 10);
    await o.connected('x', 'u', true);
    writeFileSync(f, '{not json');
    const errors: Error[] = [];
    const p = new SessionOwners(f, 10, (e) => errors.push(e));
    await p.load();
    expect(errors).toHaveLength(1);
    expect(p.size).toBe(0);
    expect(readFileSync(`${f}.bad`, 'utf8')).toBe('{not json');
  });
});
