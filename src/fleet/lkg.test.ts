import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { configProblems } from '../../test/helpers/config.js';
import { tempDir } from '../../test/helpers/peers.js';
import { validateConfig } from '../config/load.js';
import { silentLogger } from '../core/log.js';
import { generateKeyPair } from './keys.js';
import { configHash, lastKnownGoodPath, loadEffectiveConfig, writeLastKnownGood } from './lkg.js';

const dirs: { cleanup(): void }[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) d.cleanup();
});

const publicKey = generateKeyPair().publicKey;

function raw(dataDir: string, version: number, extra: Record<string, unknown> = {}) {
  return {
    gateway: { id: 'gw-01', dataDir },
    uplinks: [{ name: 'cloud', type: 'mqtt', url: 'mqtt://127.0.0.1:1' }],
    fleet: { uplink: 'cloud', trustedKeys: [{ keyId: 'ops-1', publicKey }], configVersion: version },
    ...extra,
  };
}

function setup() {
  const d = tempDir('sluice-lkg-');
  dirs.push(d);
  return d.path;
}

/** Captures warn lines, to check that ignoring a stored config is said out loud. */
function recorder() {
  const lines: string[] = [];
  const logger = {
    ...silentLogger,
    warn: (_o: unknown, m: string) => lines.push(m),
    info: () => {},
  } as unknown as typeof silentLogger;
  return { lines, logger };
}

describe('last-known-good config', () => {
  it('runs the stored config when it is newer than the file, the file when it is not', async () => {
    const dir = setup();
    const file = validateConfig(raw(dir, 2));
    const stored = raw(dir, 5, { http: { port: 18080 } });
    await writeLastKnownGood(dir, { version: 5, config: stored, validated: validateConfig(stored), commandId: 'c1' });
    const eff = await loadEffectiveConfig(file, dir);
    expect(eff).toMatchObject({ source: 'last-known-good', version: 5 });
    expect(eff.config.http.port).toBe(18080);
    expect(eff.hash).toBe(configHash(validateConfig(stored)));

    const newerFile = validateConfig(raw(dir, 6));
    expect(await loadEffectiveConfig(newerFile, dir)).toMatchObject({ source: 'file', version: 6 });
    // No temp file is left behind by the atomic write.
    expect(readdirSync(join(dir, 'fleet'))).toEqual(['last-known-good.json']);
  });

  it('ignores a zero-length, damaged, invalid or foreign stored config with a log line', async () => {
    const dir = setup();
    const file = validateConfig(raw(dir, 0));
    mkdirSync(join(dir, 'fleet'), { recursive: true });
    const path = lastKnownGoodPath(dir);
    const cases: [string, RegExp][] = [
      ['', /empty/],
      ['{"format":1,"version":3,', /not JSON/],
      [JSON.stringify({ format: 1, version: 3, checksum: 'x', config: raw(dir, 3) }), /checksum/],
    ];
    for (const [text, why] of cases) {
      writeFileSync(path, text);
      const { lines, logger } = recorder();
      expect(await loadEffectiveConfig(file, dir, logger)).toMatchObject({ source: 'file' });
      expect(lines.join('\n')).toMatch(why);
    }
    // Valid JSON with a good checksum but a config this software does not accept.
    const bad = raw(dir, 3, { nonsense: true });
    await writeLastKnownGood(dir, { version: 3, config: bad, validated: file });
    const { lines, logger } = recorder();
    expect(await loadEffectiveConfig(file, dir, logger)).toMatchObject({ source: 'file' });
    expect(lines.join('\n')).toMatch(/no longer validates/);

    const foreign = { ...raw(dir, 4), gateway: { id: 'gw-99', dataDir: dir } };
    await writeLastKnownGood(dir, { version: 4, config: foreign, validated: validateConfig(foreign) });
    expect(await loadEffectiveConfig(file, dir)).toMatchObject({ source: 'file' });
  });

  it('hashes equal configs equally, defaults included', () => {
    const dir = '/tmp/x';
    const a = validateConfig(raw(dir, 1));
    const b = validateConfig({ ...raw(dir, 1), buffer: { onFull: 'drop-oldest' } });
    expect(configHash(a)).toBe(configHash(b));
    expect(configHash(a)).not.toBe(configHash(validateConfig(raw(dir, 2))));
  });

  it('makes a bad cron expression, schedule action or trusted key a config error', () => {
    const dir = '/tmp/x';
    const problems = (extra: Record<string, unknown>) => configProblems({ ...raw(dir, 1), ...extra });
    expect(problems({ schedules: [{ name: 's', cron: '61 * * * *', action: 'state' }] })).toEqual([
      expect.stringMatching(/^schedules\[0\]\.cron: "61 \* \* \* \*" is not a cron expression/),
    ]);
    expect(problems({ schedules: [{ name: 's', cron: '*/5 * * * *', action: 'reboot' }] })[0]).toMatch(
      /^schedules\[0\]\.action: must be one of/,
    );
    expect(
      problems({ schedules: [{ name: 's', cron: '*/5 * * * *', action: 'log.level', body: { level: 'loud' } }] })[0],
    ).toMatch(/^schedules\[0\]\.body\.level/);
    expect(
      problems({ schedules: [{ name: 's', cron: '0 3 * * *', action: 'uplink.flush', body: { name: 'cloud' } }] }),
    ).toEqual([]);
    const badKey = { ...raw(dir, 1), fleet: { uplink: 'cloud', trustedKeys: [{ keyId: 'k', publicKey: 'abc' }] } };
    expect(problems(badKey)[0]).toMatch(/^fleet\.trustedKeys\[0\]\.publicKey: is not an Ed25519 public key/);
  });
});
