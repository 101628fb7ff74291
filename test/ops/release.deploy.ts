/**
 * The release as a new user meets it (`npm run test:deploy`):
 * 1. `npm run bundle` builds dist/sluice-<version>-bundle.tar.gz;
 * 2. it is unpacked into an empty directory and run with plain `node` (no npm, no repository
 *    node_modules within reach): /healthz, the dashboard, a reading over MQTT, a clean SIGTERM;
 * 3. deploy/install.sh runs for real in a Debian chroot (test/ops/chroot-install.sh): Node from
 *    Debian packages, user, dirs, units, first boot, the gateway as the `sluice` user, /healthz,
 *    idempotence, --uninstall;
 * 4. the same install booted under a real systemd (systemd-nspawn, test/ops/nspawn-systemd.sh):
 *    Type=notify readiness, watchdog heartbeats, a frozen event loop killed and restarted;
 * 5. install.sh on Debian 12, whose Node.js is 18: one sentence, nothing changed;
 * 6. the bundle on arm64 under qemu-user (test/ops/arm64-qemu.sh): Debian's arm64 node loads the
 *    arm64 prebuilds and runs the gateway.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, tempDir } from '../helpers/peers.js';

const ROOT = join(import.meta.dirname, '../..');
const VERSION = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version as string;
const BUNDLE = join(ROOT, 'dist', `sluice-${VERSION}-bundle.tar.gz`);

let built = false;

beforeAll(() => {
  const r = spawnSync('npm', ['run', 'bundle', '--silent'], { cwd: ROOT, encoding: 'utf8', timeout: 540_000 });
  if (r.status !== 0) throw new Error(`npm run bundle failed:\n${r.stdout}\n${r.stderr}`);
  built = existsSync(BUNDLE);
});

describe('npm run bundle', () => {
  const dir = tempDir('sluice-bundle-');
  afterAll(() => dir.cleanup());

  it('makes one tarball with one sluice/ folder, the prebuilds for every Pi, and no dev files', () => {
    expect(built).toBe(true);
    const size = statSync(BUNDLE).size;
    expect(size).toBeLessThan(30 * 1024 * 1024);
    const list = spawnSync('tar', ['-tzf', BUNDLE], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
      .stdout.trim()
      .split('\n');
    expect(new Set(list.map((p) => p.split('/')[0]))).toEqual(new Set(['sluice']));
    for (const f of [
      'sluice/bin/sluice',
      'sluice/package.json',
      'sluice/dist/src/cli/main.js',
      'sluice/deploy/sluice.service',
      'sluice/deploy/install.sh',
      'sluice/deploy/sluice.example.yaml',
    ]) {
      expect(list, f).toContain(f);
    }
    for (const mod of ['classic-level', '@serialport/bindings-cpp']) {
      for (const target of ['linux-arm', 'linux-arm64', 'linux-x64']) {
        expect(
          list.some((p) => p.startsWith(`sluice/node_modules/${mod}/prebuilds/${target}/`) && p.endsWith('.node')),
          `${mod} ${target}`,
        ).toBe(true);
      }
      expect(list.filter((p) => p.includes(`${mod}/prebuilds/`) && /(darwin|win32|android)-/.test(p))).toEqual([]);
      for (const armv of ['armv6', 'armv7']) {
        expect(list.some((p) => p.startsWith(`sluice/node_modules/${mod}/prebuilds/linux-arm/`) && p.includes(armv)), `${mod} ${armv}`).toBe(true);
      }
    }
    expect(list.filter((p) => /\.(map|test\.js|ts)$/.test(p) && !p.endsWith('.d.ts'))).toEqual([]);
    expect(
      list.filter((p) => /node_modules\/(vitest|typescript|@biomejs|playwright-core|kinesalite|s3rver)\//.test(p)),
    ).toEqual([]);
  });

  it('runs from an empty directory with plain node: /healthz, the dashboard, a reading, a clean stop', async () => {
    expect(built).toBe(true);
    expect(spawnSync('tar', ['-xzf', BUNDLE, '-C', dir.path]).status).toBe(0);
    const bin = join(dir.path, 'sluice/bin/sluice');
    const env = { PATH: process.env.PATH, HOME: dir.path };
    const version = spawnSync(process.execPath, [bin, '--version'], { cwd: dir.path, env, encoding: 'utf8' });
    expect(version.stdout.trim()).toBe(VERSION);
    const example = spawnSync(
      process.execPath,
      [bin, 'validate', '-c', join(dir.path, 'sluice/deploy/sluice.example.yaml')],
      { env, encoding: 'utf8' },
    );
    expect(example.status, example.stderr).toBe(0);

    const [mqttPort, httpPort] = [await freePort(), await freePort()];
    const config = join(dir.path, 'gateway.yaml');
    writeFileSync(
      config,
      `gateway: {id: gw-bundle, dataDir: ./data}\nbroker: {listeners: [{host: 127.0.0.1, port: ${mqttPort}}], allowAnonymous: true}\nhttp: {host: 127.0.0.1, port: ${httpPort}}\n`,
    );
    const gw: ChildProcess = spawn(process.execPath, [bin, 'run', '-c', config], {
      cwd: dir.path,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    gw.stdout?.on('data', (d) => (output += d));
    gw.stderr?.on('data', (d) => (output += d));
    const exited = new Promise<number | null>((resolve) => gw.once('exit', (code) => resolve(code)));
    try {
      const base = `http://127.0.0.1:${httpPort}`;
      let health: Response | undefined;
      for (let i = 0; i < 150 && !health; i++) {
        health = await fetch(`${base}/healthz`).catch(() => undefined);
        if (!health) await new Promise((r) => setTimeout(r, 100));
      }
      expect(health, output).toBeDefined();
      expect(await health!.json()).toEqual({ ok: true });
      const page = await fetch(`${base}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<title>Sluice</title>');

      const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { reconnectPeriod: 0 });
      await client.publishAsync('sensors/bundle/temp', '21.5', { qos: 1 });
      await client.endAsync();
      const status = (await (await fetch(`${base}/api/status`)).json()) as {
        gateway: { id: string; version: string };
        ingest: { received: number };
      };
      expect(status.gateway).toMatchObject({ id: 'gw-bundle', version: VERSION });
      expect(status.ingest.received).toBe(1);
      expect(existsSync(join(dir.path, 'data'))).toBe(true);
    } finally {
      gw.kill('SIGTERM');
    }
    expect(await exited, output).toBe(0);
  });
});

describe('install.sh in a Debian chroot', () => {
  it('installs, applies a first-boot config, runs the gateway as sluice, is idempotent and uninstalls', async () => {
    expect(built).toBe(true);
    const [mqttPort, httpPort] = [await freePort(), await freePort()];
    const r = spawnSync(join(ROOT, 'test/ops/chroot-install.sh'), [BUNDLE, String(mqttPort), String(httpPort)], {
      encoding: 'utf8',
      timeout: 840_000,
    });
    if (r.status === 77) {
      console.warn(`chroot install skipped: ${r.stderr.trim()}`);
      return;
    }
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toContain('healthz: {"ok":true}');
    expect(r.stdout).toContain('== PASS');
  });
});

describe('sluice.service under a real systemd (systemd-nspawn)', () => {
  it('gets ready, sends heartbeats, is restarted by the watchdog when its loop freezes, stops cleanly', async () => {
    expect(built).toBe(true);
    const [mqttPort, httpPort] = [await freePort(), await freePort()];
    const r = spawnSync(join(ROOT, 'test/ops/nspawn-systemd.sh'), [BUNDLE, String(mqttPort), String(httpPort)], {
      encoding: 'utf8',
      timeout: 840_000,
    });
    if (r.status === 77) {
      console.warn(`systemd boot skipped: ${r.stderr.trim()}`);
      return;
    }
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toContain('watchdog: restarted after a frozen loop');
    expect(r.stdout).toContain('== PASS');
  });
});

describe('install.sh on Debian 12 (Node.js 18)', () => {
  it('refuses with one sentence saying what to do, and changes nothing', () => {
    expect(built).toBe(true);
    const r = spawnSync(join(ROOT, 'test/ops/bookworm-refusal.sh'), [BUNDLE], { encoding: 'utf8', timeout: 840_000 });
    if (r.status === 77) {
      console.warn(`bookworm check skipped: ${r.stderr.trim()}`);
      return;
    }
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toContain('== PASS');
  });
});

describe('the bundle on arm64 (qemu-user)', () => {
  it('loads the arm64 prebuilds and runs the gateway: /healthz, a QoS 1 reading, a clean stop', async () => {
    expect(built).toBe(true);
    const [mqttPort, httpPort] = [await freePort(), await freePort()];
    const r = spawnSync(join(ROOT, 'test/ops/arm64-qemu.sh'), [BUNDLE, String(mqttPort), String(httpPort)], {
      encoding: 'utf8',
      timeout: 840_000,
    });
    if (r.status === 77) {
      console.warn(`arm64 check skipped: ${r.stderr.trim()}`);
      return;
    }
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toContain('classic-level: arm64 addon loaded');
    expect(r.stdout).toContain('@serialport/bindings-cpp: arm64 addon loaded');
    expect(r.stdout).toContain('== PASS');
  });
});
