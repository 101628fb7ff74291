/**
 * The config.set state machine (src/fleet/apply.ts) driven directly against a real Gateway: the
 * paths the MQTT end-to-end test does not reach (a version bump with the same config, a shutdown in
 * the middle of the health check) and the completion rules of prepareConfig.
 */
import { existsSync } from 'node:fs';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ConfigError, validateConfig } from '../../src/config/load.js';
import { applyConfigSet, prepareConfig } from '../../src/fleet/apply.js';
import { generateKeyPair } from '../../src/fleet/keys.js';
import { lastKnownGoodPath, readLastKnownGood } from '../../src/fleet/lkg.js';
import { Gateway } from '../../src/gateway.js';
import { freePort, tempDir } from '../helpers/peers.js';
import { cleanupsAfterEach } from '../helpers/cleanups.js';

const logger = pino({ level: 'info' }, new Writable({ write: (_c, _e, cb) => cb() }));
const { publicKey } = generateKeyPair();
const cleanups = cleanupsAfterEach();

async function gateway() {
  const dir = tempDir('sluice-apply-');
  const dead = `mqtt://127.0.0.1:${await freePort()}`;
  const local = {
    broker: { listeners: [{ host: '127.0.0.1', port: await freePort() }] },
    http: { host: '127.0.0.1', port: await freePort() },
  };
  // An operator's config: no gateway section. The fleet link points nowhere (no broker needed here).
  const operator = {
    ...local,
    uplinks: [{ name: 'cloud', type: 'mqtt', url: dead, connectTimeout: '1s' }],
    fleet: { uplink: 'cloud', trustedKeys: [{ keyId: 'k', publicKey }], healthTimeout: '10s' },
  };
  const gw = new Gateway(validateConfig({ gateway: { id: 'gw-apply', dataDir: dir.path }, ...operator }), { logger });
  await gw.start();
  cleanups.push(dir.cleanup, () => gw.stop());
  return { gw, operator, dataDir: dir.path };
}

describe('config.set apply', () => {
  it('completes an operator config with the running id and data dir, and the command version', async () => {
    const { gw, operator } = await gateway();
    const { config, raw } = prepareConfig(operator, gw.config, 4);
    expect(config.gateway).toMatchObject({ id: 'gw-apply', dataDir: gw.config.gateway.dataDir });
    expect(config.fleet?.configVersion).toBe(4);
    expect((raw.fleet as { configVersion: number }).configVersion).toBe(4);
    const problems = (over: Record<string, unknown>) => {
      try {
        prepareConfig({ ...operator, ...over }, gw.config, 4);
        return [];
      } catch (err) {
        return (err as ConfigError).problems;
      }
    };
    expect(problems({ gateway: { id: 'gw-other' } })[0]).toMatch(/gateway.id: "gw-other" differs/);
    expect(problems({ gateway: { dataDir: '/elsewhere' } })[0]).toMatch(/gateway.dataDir: cannot change/);
    expect(problems({ fleet: { ...operator.fleet, configVersion: 3 } })[0]).toMatch(/configVersion: 3 differs from the command's version 4/);
  });

  it('records a higher version of the same config without touching a component', async () => {
    const { gw, operator, dataDir } = await gateway();
    const deps = { gateway: gw, logger, adopt: async () => {}, fleetConnected: () => true };
    // Unhealthy (the uplink's broker is dead) but unchanged: no health check, so no rollback.
    const report = await applyConfigSet(deps, 'c1', { version: 7, config: operator });
    expect(report).toMatchObject({ ok: true, outcome: 'noop', version: 7, previousVersion: 0 });
    expect(gw.config.fleet?.configVersion).toBe(7);
    expect((await readLastKnownGood(dataDir, logger))?.stored.version).toBe(7);
  });

  it('keeps nothing and rolls nothing back when the gateway stops during the health check', async () => {
    const { gw, operator, dataDir } = await gateway();
    const abort = new AbortController();
    const deps = { gateway: gw, logger, adopt: async () => {}, fleetConnected: () => true, signal: abort.signal };
    const next = { ...operator, drivers: [{ name: 'sim', type: 'simulator', interval: 100 }] };
    const t0 = Date.now();
    const pending = applyConfigSet(deps, 'c2', { version: 1, config: next });
    setTimeout(() => abort.abort(), 300);
    const report = await pending;
    expect(report).toMatchObject({ ok: false, outcome: 'interrupted', version: 1 });
    expect(Date.now() - t0).toBeLessThan(3000); // not the 10 s health timeout
    expect(gw.config.drivers.map((d) => d.name)).toEqual(['sim']); // no rollback on the way down
    expect(existsSync(lastKnownGoodPath(dataDir))).toBe(false); // not kept: the next start runs the file
  });

  it('checks drivers and ingest when fleet.healthCheck asks for them', async () => {
    const { gw, operator } = await gateway();
    const deps = { gateway: gw, logger, adopt: async () => {}, fleetConnected: () => true };
    const fleet = { ...operator.fleet, healthTimeout: '3s', healthCheck: { uplinks: false, drivers: true, ingest: true } };
    const sim = { name: 'sim', type: 'simulator', interval: 100 };
    const good = await applyConfigSet(deps, 'h1', { version: 1, config: { ...operator, fleet, drivers: [sim] } });
    expect(good, good.error).toMatchObject({ ok: true, outcome: 'applied' });

    const plc = {
      name: 'plc',
      type: 'modbus-tcp',
      host: '127.0.0.1',
      port: await freePort(),
      devices: [{ unitId: 1, interval: '200ms', timeout: '200ms', points: [{ name: 't', table: 'holding', address: 0, topic: 'plc/t' }] }],
    };
    const bad = await applyConfigSet(deps, 'h2', { version: 2, config: { ...operator, fleet, drivers: [sim, plc] } });
    expect(bad).toMatchObject({ ok: false, outcome: 'rolled-back', previousVersion: 1 });
    expect(bad.error).toMatch(/driver "plc" has no device up/);
    expect(gw.config.drivers.map((d) => d.name)).toEqual(['sim']);
  });
});
