import { afterEach, describe, expect, it } from 'vitest';
import { LoginLimiter } from './login-limiter.js';
import { type LoginResult, Logins } from './logins.js';
import { hashPassword } from './password.js';

const reasonOf = (r: LoginResult) => (r.ok ? 'ok' : r.reason);

describe('Logins', () => {
  let logins: Logins | undefined;
  afterEach(async () => {
    await logins?.close();
    logins = undefined;
  });

  it('reserves before hashing: parallel wrong guesses from one address get exactly the limit of checks', async () => {
    const hash = await hashPassword('right');
    logins = new Logins({ perAddress: 3, perUser: 100 });
    const l = logins;
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => l.check({ address: '10.0.0.1', username: 'u', secret: `guess-${i}`, hashes: [hash] })),
    );
    expect(results.filter((r) => reasonOf(r) === 'auth_failed')).toHaveLength(3);
    expect(results.filter((r) => reasonOf(r) === 'auth_rate_limited')).toHaveLength(17);
    // The right password is refused from there too, for now; another address gets in.
    expect((await l.check({ address: '10.0.0.1', username: 'u', secret: 'right', hashes: [hash] })).ok).toBe(false);
    expect(await l.check({ address: '10.0.0.2', username: 'u', secret: 'right', hashes: [hash] })).toEqual({ ok: true, index: 0 });
  });

  it('limits per username across addresses, except where that user logged in before', async () => {
    const hash = await hashPassword('right');
    logins = new Logins({ perAddress: 100, perUser: 4 });
    expect((await logins.check({ address: '10.0.0.9', username: 'u', secret: 'right', hashes: [hash] })).ok).toBe(true);
    const reasons = [];
    for (let i = 0; i < 6; i++) {
      reasons.push(reasonOf(await logins.check({ address: `10.0.1.${i}`, username: 'u', secret: 'x', hashes: [hash] })));
    }
    expect(reasons).toEqual(['auth_failed', 'auth_failed', 'auth_failed', 'auth_failed', 'auth_rate_limited', 'auth_rate_limited']);
    expect(await logins.check({ address: '10.0.2.1', username: 'u', secret: 'right', hashes: [hash] })).toMatchObject({
      ok: false,
      limit: 'user',
    });
    // The device that logged in before is not locked out by the guessing elsewhere.
    expect((await logins.check({ address: '10.0.0.9', username: 'u', secret: 'right', hashes: [hash] })).ok).toBe(true);
  });

  it('remembers verified secrets (no scrypt on a reconnect loop), never failures, and matches the right hash', async () => {
    const [h1, h2] = await Promise.all([hashPassword('token-one'), hashPassword('token-two')]);
    logins = new Logins({ perAddress: 1000, perUser: 1000 });
    let t0 = performance.now();
    expect(await logins.check({ address: 'a', secret: 'token-two', hashes: [h1, h2] })).toEqual({ ok: true, index: 1 });
    const first = performance.now() - t0;
    t0 = performance.now();
    for (let i = 0; i < 100; i++) {
      expect(await logins.check({ address: 'a', secret: 'token-two', hashes: [h1, h2] })).toEqual({ ok: true, index: 1 });
    }
    const hundredCached = performance.now() - t0;
    expect(hundredCached).toBeLessThan(first);
    expect((await logins.check({ address: 'a', secret: 'token-three', hashes: [h1, h2] })).ok).toBe(false);
    // A changed hash (another salt, same secret) is checked again, not taken from the cache.
    const h2b = await hashPassword('token-two');
    expect(await logins.check({ address: 'a', secret: 'token-two', hashes: [h2b] })).toEqual({ ok: true, index: 0 });
  });

  it('refuses past its queue instead of queueing without bound, and gives the slot back', async () => {
    const hash = await hashPassword('right');
    logins = new Logins({ perAddress: 1, perUser: 1000 }, { maxQueued: 2 });
    const l = logins;
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => l.check({ address: `10.0.3.${i}`, username: 'u', secret: 'wrong', hashes: [hash] })),
    );
    expect(results.filter((r) => reasonOf(r) === 'auth_failed')).toHaveLength(2);
    expect(results.filter((r) => reasonOf(r) === 'auth_busy')).toHaveLength(6);
    // A busy refusal is not a failure: that address may try again at once (its limit is 1).
    expect((await l.check({ address: '10.0.3.7', username: 'u', secret: 'right', hashes: [hash] })).ok).toBe(true);
  });

  it('an unknown user costs a slot and the same scrypt work as a wrong password (refusal time tells no usernames)', async () => {
    logins = new Logins({ perAddress: 2, perUser: 1000 });
    const reasons = [];
    for (let i = 0; i < 3; i++) reasons.push(reasonOf(await logins.check({ address: 'b', username: 'nobody', secret: 'x', hashes: [] })));
    expect(reasons).toEqual(['auth_failed', 'auth_failed', 'auth_rate_limited']);
    // The decoy goes through the scrypt queue as a real hash does: past the queue, unknown users are refused as busy too.
    const l = new Logins({ perAddress: 1, perUser: 1000 }, { maxQueued: 2 });
    try {
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => l.check({ address: `10.0.4.${i}`, username: 'nobody', secret: 'x', hashes: [] })),
      );
      expect(results.filter((r) => reasonOf(r) === 'auth_failed')).toHaveLength(2);
      expect(results.filter((r) => reasonOf(r) === 'auth_busy')).toHaveLength(6);
    } finally {
      await l.close();
    }
  });
});

describe('LoginLimiter', () => {
  it('opens a new window after a minute and stays bounded', () => {
    const l = new LoginLimiter({ perAddress: 1, perUser: 10, maxTracked: 3 });
    expect(typeof l.reserve('x', 'u', 0)).toBe('object');
    expect(l.reserve('x', 'u', 1000)).toBe('address');
    expect(typeof l.reserve('x', 'u', 61_000)).toBe('object');
    for (let i = 0; i < 10; i++) l.reserve(`addr-${i}`, undefined, 62_000);
    // 'x' was forgotten (only 3 tracked): a fresh window.
    expect(typeof l.reserve('x', undefined, 62_000)).toBe('object');
  });
});
