import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/peers.js';
import { silentLogger } from '../core/log.js';
import { checkCommand, signCommand } from './command.js';
import { generateKeyPair, parsePrivateKey, parsePublicKey } from './keys.js';
import { ReplayStore } from './replay.js';

const dirs: { cleanup(): void }[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) d.cleanup();
});

function file(): string {
  const d = tempDir('sluice-replay-');
  dirs.push(d);
  return join(d.path, 'fleet', 'replay.json');
}

describe('ReplayStore', () => {
  it('remembers accepted ids across a restart', async () => {
    const f = file();
    const now = Date.now();
    const a = await ReplayStore.open(f, silentLogger);
    expect(a.check('c1', now)).toBeUndefined();
    await a.record('c1', now, now + 60_000);
    const b = await ReplayStore.open(f, silentLogger);
    expect(b.check('c1', now)).toMatch(/already received/);
    expect(b.check('c2', now)).toBeUndefined();
  });

  it('stays bounded and refuses what it had to forget', async () => {
    const f = file();
    const s = await ReplayStore.open(f, silentLogger, 3);
    const t = Date.now();
    for (let i = 0; i < 5; i++) await s.record(`c${i}`, t + i, t + 86_400_000);
    expect(s.size).toBe(3);
    // c0 and c1 were forgotten: their issuedAt is at or below the floor, so they stay refused.
    expect(s.check('c0', t)).toMatch(/before the oldest command/);
    expect(s.check('c1', t + 1)).toMatch(/before the oldest command/);
    expect(s.check('new', t + 10)).toBeUndefined();
  });

  it('forgets expired ids', async () => {
    const s = await ReplayStore.open(file(), silentLogger, 10, 0);
    const t = Date.now();
    await s.record('old', t - 10_000, t - 5_000);
    await s.record('new', t, t + 60_000);
    expect(s.size).toBe(1);
  });

  it('opens an unreadable store as damaged instead of failing', async () => {
    const f = file();
    mkdirSync(f, { recursive: true }); // a directory where the file should be: EISDIR
    const s = await ReplayStore.open(f, silentLogger);
    expect(s.check('c1', Date.now() - 1000)).toMatch(/before the oldest/);
    await expect(s.record('c2', Date.now(), Date.now() + 1000)).rejects.toThrow();
  });

  it('starts empty from a damaged file and refuses commands issued before that', async () => {
    const f = file();
    const s = await ReplayStore.open(f, silentLogger);
    await s.record('c1', Date.now(), Date.now() + 60_000);
    writeFileSync(f, '{"floor": 1, "entr');
    const before = Date.now() - 1;
    const damaged = await ReplayStore.open(f, silentLogger);
    expect(damaged.check('c9', before)).toMatch(/before the oldest/);
    expect(damaged.check('c9', Date.now() + 1000)).toBeUndefined();
  });

  it('keeps a pruned, expired command expired after a reboot with an unset clock (1970)', async () => {
    const f = file();
    const pair = generateKeyPair();
    const key = parsePrivateKey(pair.privatePem);
    const day = 86_400_000;
    const t = Date.UTC(2026, 0, 10);
    const old = signCommand(key, { type: 'ping', device: 'gw-01', keyId: 'k', issuedAt: t, lifetimeMs: day });
    const s1 = await ReplayStore.open(f, silentLogger);
    await s1.record(old.id, old.issuedAt, old.expiresAt, t + 1000);
    // Two days later another command is recorded: the first one has expired and is pruned.
    await s1.record('later', t + 2 * day, t + 3 * day, t + 2 * day);
    const s2 = await ReplayStore.open(f, silentLogger);
    expect(s2.check(old.id, old.issuedAt)).toBeUndefined(); // forgotten by id ...
    const ctx = (store: ReplayStore) => ({
      gatewayId: 'gw-01',
      trustedKeys: new Map([['k', parsePublicKey(pair.publicKey)]]),
      now: Date.UTC(1970, 0, 1, 0, 5), // a Pi without RTC before NTP
      clockSkewMs: 300_000,
      maxLifetimeMs: 30 * day,
      replayed: (id: string, issuedAt: number) => store.check(id, issuedAt),
      lastKnownTime: store.lastKnownTime,
    });
    // ... yet still refused: its expiry is checked against the last time the clock was known.
    const r = checkCommand(JSON.stringify(old), ctx(s2));
    expect(r).toMatchObject({ ok: false, code: 'expired' });
    // A command still valid at that time is accepted with the unset clock.
    const fresh = signCommand(key, { type: 'ping', device: 'gw-01', keyId: 'k', issuedAt: t + 2 * day, lifetimeMs: 7 * day });
    expect(checkCommand(JSON.stringify(fresh), ctx(s2)).ok).toBe(true);
  });
});
