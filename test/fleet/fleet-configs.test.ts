/**
 * The fleet end to end, configs: an operator makes a key, signs a config that adds a driver and
 * changes a detector, publishes it with mosquitto_pub and sees `ok` with the new version in the
 * retained state while ingest goes on without a gap; a config pointing the uplink at a dead host is
 * rolled back within the health timeout and reported; a command queued while the gateway was
 * stopped is applied at the next start, the last-known-good config boots, and a replay is refused.
 * Against a real Mosquitto standing in for the cloud broker and a real Gateway (harness.ts).
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { loadEffectiveConfig } from '../../src/fleet/index.js';
import { configHash } from '../../src/fleet/lkg.js';
import { waitFor } from '../helpers/gateway.js';
import { freePort } from '../helpers/peers.js';
import { ID, PREFIX, startGateway, useFleetHarness } from './harness.js';

describe('fleet management over MQTT: configs', () => {
  const h = useFleetHarness();

  it('applies a signed config that adds a driver and changes a detector, without a gap in ingest', async () => {
    await waitFor(() => h.events.length > 20, 10_000, 'readings reaching the cloud');
    const config = h.operatorConfig({
      drivers: [
        ...h.baseConfig().drivers,
        { name: 'sim2', type: 'simulator', interval: 50, sensors: [{ topic: 'sim/two/temp', base: 5 }], seed: 2 },
      ],
      analytics: [{ name: 'temp', match: 'sim/+/temp', field: 'value', detector: 'ewma' }],
    });
    const file = join(h.keys.path, 'v1.json');
    writeFileSync(file, JSON.stringify(config));
    const cmd = await h.signed('config.set', undefined, ['--config', file, '--version', '1']);
    const t0 = Date.now();
    const res = await h.publishCommand(cmd);
    expect(res, res.error).toMatchObject({ ok: true, result: { outcome: 'applied', version: 1, previousVersion: 0 } });
    const appliedAt = Date.now();
    console.log(`apply: result ${appliedAt - t0} ms after publishing; phases ${JSON.stringify(res.result?.timings)}`);

    // The retained state carries the new version, for anyone who subscribes later.
    const late = await mqtt.connectAsync(h.cloud.url, { clientId: 'late-reader' });
    const retained = await new Promise<Record<string, unknown>>((resolve) => {
      late.on('message', (_t, p) => resolve(JSON.parse(p.toString())));
      void late.subscribeAsync(`${PREFIX}/${ID}/state`, { qos: 1 });
    });
    await late.endAsync();
    expect(retained).toMatchObject({
      status: 'online',
      configVersion: 1,
      configHash: configHash(h.gw.gateway.config),
      lastApply: { outcome: 'applied', version: 1 },
    });

    // The new driver delivers, the detector changed, the old driver never stopped.
    await waitFor(() => h.events.some((e) => e.topic === 'sim/two/temp'), 10_000, 'readings of the new driver');
    expect(h.gw.gateway.config.analytics[0].detector).toBe('ewma');
    await waitFor(
      () => h.events.some((e) => e.topic === 'sim/one/temp' && e.ts > appliedAt + 500),
      10_000,
      'sim1 after the change',
    );
    const seqs = h.events.map((e) => e.seq).sort((a, b) => a - b);
    const distinct = [...new Set(seqs)];
    expect(distinct[distinct.length - 1] - distinct[0] + 1).toBe(distinct.length); // no seq missing
    const sim1 = h.events
      .filter((e) => e.topic === 'sim/one/temp' && e.ts > t0 - 2000 && e.ts < appliedAt + 500)
      .map((e) => e.ts);
    sim1.sort((a, b) => a - b);
    const maxGap = Math.max(...sim1.slice(1).map((t, i) => t - sim1[i]));
    expect(maxGap).toBeLessThan(1000); // 50 ms interval: no stall across the apply
    expect(h.sensorClosed).toBe(0);
    expect(h.sensor.connected).toBe(true);

    // Kept as last-known-good: a restart with the old file boots version 1.
    const fileConfig = validateConfig(h.baseConfig());
    const eff = await loadEffectiveConfig(fileConfig, h.data.path);
    expect(eff).toMatchObject({ source: 'last-known-good', version: 1 });
    expect(eff.config.drivers.map((d) => d.name)).toEqual(['sim1', 'sim2']);

    // The same command content again (new id, same version and config) is a no-op.
    const again = await h.signed('config.set', undefined, ['--config', file, '--version', '1']);
    expect(await h.publishCommand(again)).toMatchObject({ ok: true, result: { outcome: 'noop', version: 1 } });
  }, 40_000);


  it('rolls back a config that points the uplink at a dead host, within the health timeout, and reports it', async () => {
    const deadPort = await freePort();
    const hashBefore = configHash(h.gw.gateway.config);
    const config = h.operatorConfig({
      drivers: [
        ...h.baseConfig().drivers,
        { name: 'sim2', type: 'simulator', interval: 50, sensors: [{ topic: 'sim/two/temp', base: 5 }], seed: 2 },
      ],
      analytics: [{ name: 'temp', match: 'sim/+/temp', field: 'value', detector: 'ewma' }],
      uplinks: [
        { name: 'cloud', type: 'mqtt', url: `mqtt://127.0.0.1:${deadPort}`, topicPrefix: PREFIX, connectTimeout: '1s' },
      ],
    });
    const cmd = await h.signed('config.set', { version: 2, config });
    const t0 = Date.now();
    const res = await h.publishCommand(cmd);
    const took = Date.now() - t0;
    expect(res.ok).toBe(false);
    expect(res.error).toMatch(
      /config version 2 was rolled back to version 1: it was not healthy within 4000 ms: uplink "cloud" is not connected/,
    );
    expect(res.result).toMatchObject({
      outcome: 'rolled-back',
      version: 2,
      previousVersion: 1,
      health: { healthy: false },
    });
    expect(took).toBeLessThan(4000 + 6000); // the health timeout, plus reconnecting to report
    console.log(`rollback: result ${took} ms after publishing; phases ${JSON.stringify(res.result?.timings)}`);
    expect(configHash(h.gw.gateway.config)).toBe(hashBefore);
    await waitFor(
      () =>
        h.states.at(-1)?.status === 'online' &&
        (h.states.at(-1)?.lastApply as { outcome?: string })?.outcome === 'rolled-back',
      10_000,
      'the state after rollback',
    );
    expect(h.states.at(-1)).toMatchObject({
      configVersion: 1,
      configHash: hashBefore,
      lastApply: { version: 2, outcome: 'rolled-back', rollback: 'ok', error: expect.stringMatching(/not connected/) },
    });
    // The uplink is back on the good broker and delivering.
    const n = h.events.length;
    await waitFor(() => h.events.length > n + 10, 10_000, 'deliveries after the rollback');
    // The uplink was replaced twice (dead host, then back) and kept its cursor: what was appended
    // while it pointed nowhere arrives too, no seq missing.
    const lastSeq = h.gw.gateway.log.stats().lastSeq;
    await waitFor(() => h.events.some((e) => e.seq >= lastSeq), 10_000, 'the backlog of the outage');
    const seqs = [...new Set(h.events.map((e) => e.seq))].sort((a, b) => a - b);
    expect(seqs[seqs.length - 1] - seqs[0] + 1).toBe(seqs.length);
    expect((await loadEffectiveConfig(validateConfig(h.baseConfig()), h.data.path)).version).toBe(1);
  }, 30_000);


  it('applies a command queued while the gateway was stopped, boots the last-known-good config, and refuses a replay after a restart', async () => {
    const ports = { mqttPort: h.gw.mqttPort, httpPort: h.gw.httpPort };
    await h.sensor.endAsync();
    await h.gw.stop();
    await waitFor(() => h.states.at(-1)?.status === 'offline', 10_000, 'the offline state');
    const config = h.operatorConfig({
      drivers: [
        ...h.baseConfig().drivers,
        { name: 'sim3', type: 'simulator', interval: 100, sensors: [{ topic: 'sim/three/temp' }], seed: 3 },
      ],
      schedules: [{ name: 'report', cron: '* * * * * *', action: 'status' }],
    });
    const cmd = await h.signed('config.set', { version: 3, config });
    const r = spawnSync(
      'mosquitto_pub',
      ['-h', '127.0.0.1', '-p', String(h.cloud.port), '-q', '1', '-t', `${PREFIX}/${ID}/cmd`, '-m', cmd],
      {
        encoding: 'utf8',
      },
    );
    expect(r.status, r.stderr).toBe(0);
    const id = JSON.parse(cmd).id;

    // Restarted with the original file (version 0): it boots version 1, the last-known-good one,
    // then the broker hands it the queued command.
    h.gw = await startGateway(h.baseConfig(), ports);
    expect(h.gw.gateway.config.drivers.map((d) => d.name)).toEqual(['sim1', 'sim2']);
    const res = await waitFor(() => h.results.find((x) => x.id === id), 20_000, 'the queued command result');
    expect(res, res.error).toMatchObject({ ok: true, result: { outcome: 'applied', version: 3, previousVersion: 1 } });
    expect(h.gw.gateway.config.drivers.map((d) => d.name)).toContain('sim3');

    // Restarted again: version 3 runs, and the same command is a replay.
    await h.gw.stop();
    h.gw = await startGateway(h.baseConfig(), ports);
    expect(h.gw.gateway.config.fleet?.configVersion).toBe(3);
    await waitFor(
      () => h.states.at(-1)?.status === 'online' && h.states.at(-1)?.configVersion === 3,
      10_000,
      'online again',
    );
    const replay = await h.publishCommand(cmd);
    expect(replay).toMatchObject({ ok: false, error: expect.stringMatching(/replay/) });

    // The schedule that came with version 3 publishes the status report every second.
    const reports: Record<string, unknown>[] = [];
    const watcher = await mqtt.connectAsync(h.cloud.url, { clientId: 'status-reader' });
    watcher.on('message', (_t, p) => reports.push(JSON.parse(p.toString())));
    await watcher.subscribeAsync(`${PREFIX}/${ID}/status`, { qos: 1 });
    await waitFor(() => reports.length >= 2, 10_000, 'two scheduled status reports');
    await watcher.endAsync();
    expect(reports[0]).toMatchObject({ gateway: { id: ID }, uplinks: [expect.objectContaining({ name: 'cloud' })] });
    expect(h.gw.gateway.fleet?.status().schedules[0]).toMatchObject({ name: 'report', action: 'status', failures: 0 });
  }, 60_000);
});
