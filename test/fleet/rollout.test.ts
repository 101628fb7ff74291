/**
 * The operator README's rollout script (src/fleet/README.md), run as written with bash,
 * mosquitto_sub/mosquitto_pub and jq against a real Mosquitto and two real gateways: it reports
 * each gateway's outcome, says which one did not answer, and stops at the first failure. Signing is
 * replaced by a shim that prints commands signed in the test (`sluice fleet sign` has its own tests
 * and needs the built CLI).
 */
import { spawn } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { signCommand } from '../../src/fleet/command.js';
import { generateKeyPair, parsePrivateKey } from '../../src/fleet/keys.js';
import { Gateway } from '../../src/gateway.js';
import { waitFor } from '../helpers/gateway.js';
import { freePort, type Peer, startMosquitto, tempDir } from '../helpers/peers.js';

const pair = generateKeyPair();
const priv = parsePrivateKey(pair.privatePem);

function script(): string {
  const readme = readFileSync(new URL('../../src/fleet/README.md', import.meta.url), 'utf8');
  const m = /```bash\n(#!\/bin\/bash\n# usage: rollout\.sh[\s\S]*?)```/.exec(readme);
  if (!m) throw new Error('no rollout script in src/fleet/README.md');
  return m[1];
}

function run(
  cmd: string,
  args: string[],
  env: Record<string, string>,
  cwd: string,
): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { env: { ...process.env, ...env }, cwd });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => {
      out += d;
    });
    p.stderr.on('data', (d) => {
      err += d;
    });
    p.on('close', (code) => resolve({ code: code ?? -1, out, err }));
  });
}

describe('the README rollout script', () => {
  let cloud: Peer;
  const dir = tempDir('sluice-rollout-');
  const gateways: { gw: Gateway; local: Record<string, unknown> }[] = [];
  const fleetConfig = (url: string) => ({
    uplinks: [{ name: 'cloud', type: 'mqtt', url, batch: { maxDelay: 20 } }],
    drivers: [{ name: 'sim', type: 'simulator', interval: 100, seed: 1 }],
    fleet: { uplink: 'cloud', trustedKeys: [{ keyId: 'ops-1', publicKey: pair.publicKey }], healthTimeout: '2s' },
  });

  beforeAll(async () => {
    cloud = await startMosquitto();
    for (const id of ['gw-a', 'gw-b']) {
      const [mqttPort, httpPort] = [await freePort(), await freePort()];
      // Real gateways each listen on the same ports on their own machines; here they share one.
      const local = {
        broker: { listeners: [{ host: '127.0.0.1', port: mqttPort }] },
        http: { host: '127.0.0.1', port: httpPort },
      };
      const config = validateConfig({
        gateway: { id, dataDir: join(dir.path, id) },
        ...local,
        ...fleetConfig(cloud.url),
      });
      const gw = new Gateway(config, {
        logger: pino({ level: 'info' }, new Writable({ write: (_c, _e, cb) => cb() })),
      });
      await gw.start(); // the gateway runs its own FleetAgent
      gateways.push({ gw, local });
    }
    await waitFor(() => gateways.every((g) => g.gw.fleet?.status().connected), 10_000, 'fleet connections');
  });

  afterAll(async () => {
    for (const { gw } of gateways) await gw.stop();
    await cloud?.stop();
    dir.cleanup();
  });

  /** Signs, per device, the command the script would have asked `sluice fleet sign` for. */
  function shim(version: number, configs: Record<string, unknown>): string {
    for (const [device, config] of Object.entries(configs)) {
      writeFileSync(
        join(dir.path, `${device}.cmd`),
        JSON.stringify(signCommand(priv, { type: 'config.set', device, keyId: 'ops-1', body: { version, config } })),
      );
    }
    const path = join(dir.path, 'sluice-shim.sh');
    writeFileSync(
      path,
      `#!/bin/bash\nwhile [ $# -gt 0 ]; do [ "$1" = --device ] && dev=$2; shift; done\ncat "${dir.path}/$dev.cmd"\n`,
    );
    chmodSync(path, 0o755);
    return path;
  }

  it('rolls a config out, reports a gateway that does not answer, and stops at the first failure', async () => {
    writeFileSync(join(dir.path, 'rollout.sh'), script());
    const env = (sluice: string, wait = '4') => ({
      FLEET_MQTT: `-h 127.0.0.1 -p ${cloud.port}`,
      SIGNING_KEY: 'unused',
      SLUICE: sluice,
      WAIT: wait,
    });
    const [a, b] = gateways.map((g) => g.local);
    const good = { ...fleetConfig(cloud.url), drivers: [{ name: 'sim', type: 'simulator', interval: 200, seed: 2 }] };
    const ok = await run(
      'bash',
      ['rollout.sh', '1', 'site.yaml', 'gw-a', 'gw-gone', 'gw-b'],
      env(shim(1, { 'gw-a': { ...good, ...a }, 'gw-b': { ...good, ...b }, 'gw-gone': good })),
      dir.path,
    );
    expect(ok.out, ok.err).toBe('gw-a: applied version 1\ngw-b: applied version 1\n');
    expect(ok.err).toMatch(/gw-gone: no answer yet \(offline\?\)/);
    expect(ok.code).toBe(0);
    expect(gateways.map((g) => g.gw.config.fleet?.configVersion)).toEqual([1, 1]);

    // The last will names the version now running (the fleet link reconnected to update it).
    const wills: Record<string, unknown>[] = [];
    const watcher = await mqtt.connectAsync(cloud.url, { clientId: 'will-watcher' });
    watcher.on('message', (_t, p) => wills.push(JSON.parse(p.toString())));
    await watcher.subscribeAsync('sluice/gw-b/state', { qos: 1 });
    (gateways[1].gw.fleet as unknown as { client: mqtt.MqttClient }).client.stream.destroy();
    await waitFor(() => wills.find((w) => w.status === 'offline'), 10_000, 'the last will of gw-b');
    expect(wills.find((w) => w.status === 'offline')).toMatchObject({ gateway: 'gw-b', configVersion: 1 });
    await watcher.endAsync();

    const dead = `mqtt://127.0.0.1:${await freePort()}`;
    const bad = { ...fleetConfig(dead), uplinks: [{ name: 'cloud', type: 'mqtt', url: dead, connectTimeout: '1s' }] };
    const failed = await run(
      'bash',
      ['rollout.sh', '2', 'site.yaml', 'gw-a', 'gw-b'],
      env(shim(2, { 'gw-a': { ...bad, ...a }, 'gw-b': { ...bad, ...b } }), '15'),
      dir.path,
    );
    expect(failed.code, `${failed.out}\n${failed.err}`).toBe(1);
    expect(failed.err).toMatch(/gw-a: FAILED: config version 2 was rolled back to version 1/);
    expect(failed.out).toBe('');

    // gw-b was never touched: the rollout stopped at the canary.
    expect(gateways.map((g) => g.gw.config.fleet?.configVersion)).toEqual([1, 1]);
  }, 60_000);
});
