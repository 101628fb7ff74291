import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { tempDir } from '../../../test/helpers/peers.js';
import { checkCommand } from '../../fleet/command.js';
import { parsePublicKey } from '../../fleet/keys.js';
import { sluice } from '../../../test/helpers/cli.js';

const dirs: { cleanup(): void }[] = [];
afterEach(() => {
  vi.restoreAllMocks();
  for (const d of dirs.splice(0)) d.cleanup();
});

function dir() {
  const d = tempDir('sluice-cli-fleet-');
  dirs.push(d);
  return d.path;
}

describe('sluice keygen and sluice fleet sign', () => {
  it('makes a key pair, then signs commands the gateway accepts', async () => {
    const d = dir();
    const gen = await sluice('keygen', '--out', join(d, 'keys'), '--id', 'ops-1');
    expect(gen.code).toBe(0);
    const entry = JSON.parse(gen.out);
    expect(entry).toEqual({ keyId: 'ops-1', publicKey: expect.any(String) });
    expect(statSync(join(d, 'keys', 'ops-1.key')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(d, 'keys', 'ops-1.pub'), 'utf8')).toMatch(/BEGIN PUBLIC KEY/);
    // Never overwrites a key.
    expect((await sluice('keygen', '--out', join(d, 'keys'), '--id', 'ops-1')).code).toBe(1);

    writeFileSync(join(d, 'body.yaml'), 'level: debug\nfor: 5m\n');
    const signed = await sluice(
      'fleet',
      'sign',
      '--key',
      join(d, 'keys', 'ops-1.key'),
      '--device',
      'gw-01',
      '--device',
      'gw-02',
      '--type',
      'log.level',
      '--body',
      join(d, 'body.yaml'),
    );
    expect(signed.code).toBe(0);
    const lines = signed.out.trim().split('\n');
    expect(lines).toHaveLength(2);
    const ctx = {
      gatewayId: 'gw-02',
      trustedKeys: new Map([['ops-1', parsePublicKey(entry.publicKey)]]),
      now: Date.now(),
      clockSkewMs: 60_000,
      maxLifetimeMs: 30 * 86_400_000,
      replayed: () => undefined,
    };
    expect(checkCommand(lines[1], ctx)).toMatchObject({
      ok: true,
      command: { type: 'log.level', body: { level: 'debug', for: 300_000 } },
    });
    expect(checkCommand(lines[0], ctx)).toMatchObject({ ok: false, code: 'wrong-device' });
  });

  it('builds and validates a config.set body from a config file', async () => {
    const d = dir();
    const { publicKey } = JSON.parse((await sluice('keygen', '--out', d, '--id', 'k')).out);
    const cfg = `uplinks: [{name: cloud, type: mqtt, url: "mqtt://127.0.0.1:1883"}]\nfleet: {uplink: cloud, trustedKeys: [{keyId: k, publicKey: "${publicKey}"}]}\n`;
    writeFileSync(join(d, 'good.yaml'), cfg);
    const signConfig = (file: string) =>
      sluice('fleet', 'sign', '--key', join(d, 'k.key'), '--device', 'gw-07', '--type', 'config.set', '--config', join(d, file), '--version', '3');
    const ok = await signConfig('good.yaml');
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out)).toMatchObject({
      type: 'config.set',
      device: 'gw-07',
      keyId: 'k',
      body: { version: 3, config: { fleet: { uplink: 'cloud' } } },
    });

    writeFileSync(join(d, 'nofleet.yaml'), 'uplinks: []\n');
    const noFleet = await signConfig('nofleet.yaml');
    expect(noFleet).toMatchObject({ code: 1, err: expect.stringMatching(/must keep a fleet section/) });

    writeFileSync(join(d, 'bad.yaml'), `${cfg}drivers: [{name: x, type: warp}]\n`);
    const bad = await signConfig('bad.yaml');
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/drivers\[0\]/);
  });

  it('refuses bad usage with exit 2 and bad input with exit 1, in one sentence', async () => {
    const d = dir();
    expect((await sluice('keygen')).code).toBe(2);
    expect((await sluice('fleet', 'sign', '--key', 'x')).code).toBe(2);
    const missing = await sluice('fleet', 'sign', '--key', join(d, 'none.key'), '--device', 'g', '--type', 'ping');
    expect(missing).toMatchObject({ code: 1, err: expect.stringMatching(/none\.key cannot be read \(ENOENT\)/) });
    await sluice('keygen', '--out', d, '--id', 'k');
    const unknown = await sluice('fleet', 'sign', '--key', join(d, 'k.key'), '--device', 'g', '--type', 'reboot');
    expect(unknown).toMatchObject({ code: 1, err: expect.stringMatching(/unknown command type "reboot"/) });
  });
});
