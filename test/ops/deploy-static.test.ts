/**
 * Fast checks of deploy/ (part of the default suite): the units pass `systemd-analyze verify` and
 * keep their hardening, the scripts pass shellcheck, and gateway-id.mjs derives ids as documented.
 * The slow checks (bundle, chroot install) are `npm run test:deploy`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/peers.js';

const ROOT = join(import.meta.dirname, '../..');
const DEPLOY = join(ROOT, 'deploy');
const has = (bin: string) => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;

describe('systemd units', () => {
  const unit = readFileSync(join(DEPLOY, 'sluice.service'), 'utf8');
  const settings = new Map<string, string[]>();
  for (const line of unit.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) settings.set(m[1], [...(settings.get(m[1]) ?? []), m[2]]);
  }
  const one = (key: string) => settings.get(key)?.at(-1);

  it.skipIf(!has('systemd-analyze'))('pass systemd-analyze verify', () => {
    const r = spawnSync(
      'systemd-analyze',
      ['verify', join(DEPLOY, 'sluice.service'), join(DEPLOY, 'sluice-firstboot.service')],
      {
        encoding: 'utf8',
        cwd: '/',
      },
    );
    // verify also lints the host's own units it loads as dependencies: only our files' lines count.
    const ours = `${r.stdout}${r.stderr}`.split('\n').filter((l) => /sluice/.test(l));
    expect(ours).toEqual([]);
    expect(r.status).toBe(0);
  });

  it('are hardened as the issue asks, with the watchdog', () => {
    expect(one('Type')).toBe('notify');
    expect(one('NotifyAccess')).toBe('all');
    expect(Number.parseInt(one('WatchdogSec') ?? '', 10)).toBeGreaterThan(0);
    expect(one('User')).toBe('sluice');
    expect(one('ProtectSystem')).toBe('strict');
    expect(one('ReadWritePaths')).toBe('/var/lib/sluice');
    expect(one('NoNewPrivileges')).toBe('yes');
    expect(one('PrivateTmp')).toBe('yes');
    expect(one('MemoryMax')).toMatch(/^\d+[KMG]$/);
    expect(one('Restart')).toBe('on-failure');
    expect(one('CapabilityBoundingSet')).toBe('');
    // V8's JIT needs W+X pages: this setting would crash node at start.
    expect(settings.has('MemoryDenyWriteExecute')).toBe(false);
  });

  it.skipIf(!has('systemd-analyze'))('score "OK" or better in systemd-analyze security', () => {
    const r = spawnSync('systemd-analyze', ['security', '--offline=yes', join(DEPLOY, 'sluice.service')], {
      encoding: 'utf8',
      cwd: '/',
    });
    const score = /Overall exposure level for sluice\.service: ([\d.]+)/.exec(r.stdout);
    expect(score, r.stdout + r.stderr).not.toBeNull();
    expect(Number(score![1])).toBeLessThan(4);
  });
});

describe.skipIf(!has('shellcheck'))('shell scripts', () => {
  it('pass shellcheck', () => {
    const scripts = [
      'deploy/install.sh',
      'deploy/firstboot.sh',
      'deploy/bundle.sh',
      'test/ops/chroot-install.sh',
      'test/ops/nspawn-systemd.sh',
      'test/ops/bookworm-refusal.sh',
      'test/ops/arm64-qemu.sh',
    ];
    for (const s of scripts) expect(existsSync(join(ROOT, s)), s).toBe(true);
    const r = spawnSync('shellcheck', ['--severity=style', ...scripts], { cwd: ROOT, encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('install.sh explains its usage and refuses non-root and unknown options', () => {
    const r = spawnSync('bash', [join(DEPLOY, 'install.sh'), '--frobnicate'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown option --frobnicate/);
    expect(r.stderr).toMatch(/--uninstall/);
  });
});

describe('gateway-id.mjs', () => {
  const dir = tempDir('sluice-gwid-');
  afterAll(() => dir.cleanup());
  const run = (file: string, serial?: string) =>
    spawnSync(process.execPath, [join(DEPLOY, 'gateway-id.mjs'), file], {
      encoding: 'utf8',
      env: { ...process.env, SLUICE_BOARD_SERIAL: serial ?? '' },
    });

  it('sets gw-<serial> when the config sets no id, keeping comments', () => {
    const file = join(dir.path, 'a.yaml');
    writeFileSync(file, '# one file for the fleet\ngateway:\n  dataDir: /var/lib/sluice # data\nhttp: {port: 8080}\n');
    const r = run(file, '10000000ABCD1234');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('gw-10000000abcd1234');
    const text = readFileSync(file, 'utf8');
    expect(text).toContain('# one file for the fleet');
    expect(text).toContain('# data');
    expect(text).toMatch(/id: gw-10000000abcd1234/);
  });

  it('adds a gateway section to an empty config and leaves a set id alone', () => {
    const empty = join(dir.path, 'b.yaml');
    writeFileSync(empty, '');
    expect(run(empty, 'cafe').stdout.trim()).toBe('gw-cafe');
    const set = join(dir.path, 'c.yaml');
    writeFileSync(set, 'gateway: {id: plant-7}\n');
    const r = run(set, 'cafe');
    expect(r.stdout.trim()).toBe('plant-7');
    expect(readFileSync(set, 'utf8')).toBe('gateway: {id: plant-7}\n');
  });

  it('reads the Raspberry Pi serial from /proc/cpuinfo or the device tree when present', () => {
    // On this machine there may be neither: then the machine id is used. Either way an id comes out.
    const file = join(dir.path, 'd.yaml');
    writeFileSync(file, 'gateway: {}\n');
    const r = spawnSync(process.execPath, [join(DEPLOY, 'gateway-id.mjs'), file], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH },
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toMatch(/^gw-[0-9a-z]{1,32}$/);
  });

  it('refuses a file that is not YAML with one sentence', () => {
    const file = join(dir.path, 'e.yaml');
    writeFileSync(file, 'gateway: [unclosed\n');
    const r = run(file, 'cafe');
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/not valid YAML/);
  });
});

describe('journald limits', () => {
  it('bound the journal on an SD card', () => {
    const conf = readFileSync(join(DEPLOY, 'journald-sluice.conf'), 'utf8');
    expect(conf).toMatch(/^\[Journal\]$/m);
    expect(conf).toMatch(/^SystemMaxUse=\d+M$/m);
    expect(conf).toMatch(/^MaxRetentionSec=/m);
    // Sanity: systemd parses this section name (a typo would be silently ignored).
    if (has('systemd-analyze'))
      expect(() =>
        execFileSync('systemd-analyze', ['cat-config', 'systemd/journald.conf'], { stdio: 'ignore' }),
      ).not.toThrow();
  });
});
