/**
 * The fleet end to end, against a real Mosquitto standing in for the cloud broker and a real
 * Gateway: an operator makes a key, signs a config that adds a driver and changes a detector,
 * publishes it with mosquitto_pub and sees `ok` with the new version in the retained state while
 * ingest goes on without a gap; a config pointing the uplink at a dead host is rolled back within
 * the health timeout and reported; each bad command is refused with its reason and changes nothing.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { validateConfig } from '../../src/config/load.js';
import { signCommand } from '../../src/fleet/command.js';
import { type FleetAgent, loadEffectiveConfig } from '../../src/fleet/index.js';
import { parsePrivateKey } from '../../src/fleet/keys.js';
import { configHash } from '../../src/fleet/lkg.js';
import { Gateway } from '../../src/gateway.js';
import { waitFor } from '../helpers/gateway.js';
import { freePort, type Peer, startMosquitto, tempDir } from '../helpers/peers.js';

interface TestGateway {
  gateway: Gateway;
  mqttPort: number;
  httpPort: number;
  stop(): Promise<void>;
}

/**
 * A real Gateway on free ports (or the given ones), started the way `sluice run` starts it: the
 * last-known-good config wins over an older file. It logs into a discarding stream
 * (test/helpers' startTestGateway shares the process-wide silent logger, whose level
 * Gateway.reconfigure would change). The gateway runs its own FleetAgent.
 */
async function startGateway(
  input: Record<string, unknown>,
  ports?: { mqttPort: number; httpPort: number },
): Promise<TestGateway> {
  const mqttPort = ports?.mqttPort ?? (await freePort());
  const httpPort = ports?.httpPort ?? (await freePort());
  const fileConfig = validateConfig({
    ...input,
    broker: { listeners: [{ host: '127.0.0.1', port: mqttPort }] },
    http: { host: '127.0.0.1', port: httpPort },
    buffer: { commitInterval: 2 },
  });
  const logger = pino({ level: 'info' }, new Writable({ write: (_c, _e, cb) => cb() }));
  const { config } = await loadEffectiveConfig(fileConfig, undefined, logger);
  const gateway = new Gateway(config, { logger });
  await gateway.start();
  return { gateway, mqttPort, httpPort, stop: () => gateway.stop() };
}

interface Result {
  id: string | null;
  ok: boolean;
  error?: string;
  result?: Record<string, unknown>;
}

const ID = 'gw-fleet';
const PREFIX = 'sluice';

/** Runs `sluice ...` in-process and returns what it printed. */
async function sluice(...args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((c) => {
    out += String(c);
    return true;
  });
  try {
    return { code: await main(args), out };
  } finally {
    spy.mockRestore();
  }
}

describe('fleet management over MQTT', () => {
  let cloud: Peer;
  let gw: TestGateway;
  const agent = () => gw.gateway.fleet as FleetAgent;
  let operator: mqtt.MqttClient;
  let sensor: mqtt.MqttClient;
  let sensorClosed = 0;
  const keys = tempDir('sluice-fleet-keys-');
  const data = tempDir('sluice-fleet-data-');
  const results: Result[] = [];
  const states: Record<string, unknown>[] = [];
  const events: { seq: number; topic: string; ts: number }[] = [];
  let trusted: { keyId: string; publicKey: string };
  let keyFile: string;

  const baseConfig = () => ({
    gateway: { id: ID, dataDir: data.path },
    uplinks: [
      { name: 'cloud', type: 'mqtt' as const, url: cloud.url, topicPrefix: PREFIX, batch: { maxDelay: 20 }, username: 'gw', password: 's3cret-pw' },
    ],
    drivers: [
      {
        name: 'sim1',
        type: 'simulator' as const,
        interval: 50,
        sensors: [{ topic: 'sim/one/temp', base: 20 }],
        seed: 1,
      },
    ],
    analytics: [{ name: 'temp', match: 'sim/+/temp', field: 'value', detector: 'zscore' as const }],
    fleet: { uplink: 'cloud', topicPrefix: PREFIX, trustedKeys: [trusted], healthTimeout: '4s' },
  });

  /** The config an operator would write for version N (no gateway section: each gateway keeps its own). */
  const operatorConfig = (over: Record<string, unknown> = {}) => {
    const { gateway: _g, ...rest } = baseConfig();
    return {
      ...rest,
      http: { host: '127.0.0.1', port: gw.httpPort },
      broker: { listeners: [{ host: '127.0.0.1', port: gw.mqttPort }] },
      buffer: { commitInterval: 2 },
      ...over,
    };
  };

  async function publishCommand(line: string): Promise<Result> {
    const id = (() => {
      try {
        return (JSON.parse(line) as { id?: string }).id ?? null;
      } catch {
        return null;
      }
    })();
    const before = results.length;
    const r = spawnSync(
      'mosquitto_pub',
      ['-h', '127.0.0.1', '-p', String(cloud.port), '-q', '1', '-t', `${PREFIX}/${ID}/cmd`, '-m', line],
      {
        encoding: 'utf8',
        timeout: 10_000,
      },
    );
    expect(r.status, r.stderr).toBe(0);
    return waitFor(() => results.slice(before).find((x) => x.id === id), 20_000, `the result of ${id}`);
  }

  async function signed(type: string, body?: unknown, extra: string[] = []): Promise<string> {
    const args = ['fleet', 'sign', '--key', keyFile, '--device', ID, '--type', type, ...extra];
    if (body !== undefined) {
      const file = join(keys.path, `body-${Math.random().toString(36).slice(2)}.json`);
      writeFileSync(file, JSON.stringify(body));
      args.push('--body', file);
    }
    const r = await sluice(...args);
    expect(r.code).toBe(0);
    return r.out.trim();
  }

  beforeAll(async () => {
    cloud = await startMosquitto('', true);
    const gen = await sluice('keygen', '--out', keys.path, '--id', 'ops-1');
    trusted = JSON.parse(gen.out);
    keyFile = join(keys.path, 'ops-1.key');

    operator = await mqtt.connectAsync(cloud.url, { clientId: 'operator' });
    operator.on('message', (topic, payload) => {
      if (payload.length === 0) return;
      const doc = JSON.parse(payload.toString());
      if (topic.endsWith('/cmd/result')) results.push(doc);
      else if (topic.endsWith('/state')) states.push(doc);
      else if (topic.endsWith('/events'))
        for (const e of doc.events) events.push({ seq: e.seq, topic: e.topic, ts: e.ts });
    });
    await operator.subscribeAsync([`${PREFIX}/${ID}/cmd/result`, `${PREFIX}/${ID}/state`, `${PREFIX}/${ID}/events`], {
      qos: 1,
    });

    gw = await startGateway(baseConfig());
    await waitFor(() => states.some((s) => s.status === 'online'), 10_000, 'the online state');

    // A sensor connected to the gateway's own broker: a config change must not drop it.
    sensor = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw.mqttPort}`, { clientId: 'sensor-1' });
    sensor.on('close', () => sensorClosed++);
  }, 30_000);

  afterAll(async () => {
    await sensor?.endAsync().catch(() => {});
    await gw?.stop();
    await operator?.endAsync();
    await cloud?.stop();
    keys.cleanup();
    data.cleanup();
  });

  it('applies a signed config that adds a driver and changes a detector, without a gap in ingest', async () => {
    await waitFor(() => events.length > 20, 10_000, 'readings reaching the cloud');
    const config = operatorConfig({
      drivers: [
        ...baseConfig().drivers,
        { name: 'sim2', type: 'simulator', interval: 50, sensors: [{ topic: 'sim/two/temp', base: 5 }], seed: 2 },
      ],
      analytics: [{ name: 'temp', match: 'sim/+/temp', field: 'value', detector: 'ewma' }],
    });
    const file = join(keys.path, 'v1.json');
    writeFileSync(file, JSON.stringify(config));
    const cmd = (
      await sluice(
        'fleet',
        'sign',
        '--key',
        keyFile,
        '--device',
        ID,
        '--type',
        'config.set',
        '--config',
        file,
        '--version',
        '1',
      )
    ).out.trim();
    const t0 = Date.now();
    const res = await publishCommand(cmd);
    expect(res, res.error).toMatchObject({ ok: true, result: { outcome: 'applied', version: 1, previousVersion: 0 } });
    const appliedAt = Date.now();
    console.log(`apply: result ${appliedAt - t0} ms after publishing; phases ${JSON.stringify(res.result?.timings)}`);

    // The retained state carries the new version, for anyone who subscribes later.
    const late = await mqtt.connectAsync(cloud.url, { clientId: 'late-reader' });
    const retained = await new Promise<Record<string, unknown>>((resolve) => {
      late.on('message', (_t, p) => resolve(JSON.parse(p.toString())));
      void late.subscribeAsync(`${PREFIX}/${ID}/state`, { qos: 1 });
    });
    await late.endAsync();
    expect(retained).toMatchObject({
      status: 'online',
      configVersion: 1,
      configHash: configHash(gw.gateway.config),
      lastApply: { outcome: 'applied', version: 1 },
    });

    // The new driver delivers, the detector changed, the old driver never stopped.
    await waitFor(() => events.some((e) => e.topic === 'sim/two/temp'), 10_000, 'readings of the new driver');
    expect(gw.gateway.config.analytics[0].detector).toBe('ewma');
    await waitFor(
      () => events.some((e) => e.topic === 'sim/one/temp' && e.ts > appliedAt + 500),
      10_000,
      'sim1 after the change',
    );
    const seqs = events.map((e) => e.seq).sort((a, b) => a - b);
    const distinct = [...new Set(seqs)];
    expect(distinct[distinct.length - 1] - distinct[0] + 1).toBe(distinct.length); // no seq missing
    const sim1 = events
      .filter((e) => e.topic === 'sim/one/temp' && e.ts > t0 - 2000 && e.ts < appliedAt + 500)
      .map((e) => e.ts);
    sim1.sort((a, b) => a - b);
    const maxGap = Math.max(...sim1.slice(1).map((t, i) => t - sim1[i]));
    expect(maxGap).toBeLessThan(1000); // 50 ms interval: no stall across the apply
    expect(sensorClosed).toBe(0);
    expect(sensor.connected).toBe(true);

    // Kept as last-known-good: a restart with the old file boots version 1.
    const fileConfig = validateConfig(baseConfig());
    const eff = await loadEffectiveConfig(fileConfig, data.path);
    expect(eff).toMatchObject({ source: 'last-known-good', version: 1 });
    expect(eff.config.drivers.map((d) => d.name)).toEqual(['sim1', 'sim2']);

    // The same command content again (new id, same version and config) is a no-op.
    const again = (
      await sluice(
        'fleet',
        'sign',
        '--key',
        keyFile,
        '--device',
        ID,
        '--type',
        'config.set',
        '--config',
        file,
        '--version',
        '1',
      )
    ).out.trim();
    expect(await publishCommand(again)).toMatchObject({ ok: true, result: { outcome: 'noop', version: 1 } });
  }, 40_000);

  it('rolls back a config that points the uplink at a dead host, within the health timeout, and reports it', async () => {
    const deadPort = await freePort();
    const hashBefore = configHash(gw.gateway.config);
    const config = operatorConfig({
      drivers: [
        ...baseConfig().drivers,
        { name: 'sim2', type: 'simulator', interval: 50, sensors: [{ topic: 'sim/two/temp', base: 5 }], seed: 2 },
      ],
      analytics: [{ name: 'temp', match: 'sim/+/temp', field: 'value', detector: 'ewma' }],
      uplinks: [
        { name: 'cloud', type: 'mqtt', url: `mqtt://127.0.0.1:${deadPort}`, topicPrefix: PREFIX, connectTimeout: '1s' },
      ],
    });
    const cmd = await signed('config.set', { version: 2, config });
    const t0 = Date.now();
    const res = await publishCommand(cmd);
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
    expect(configHash(gw.gateway.config)).toBe(hashBefore);
    await waitFor(
      () =>
        states.at(-1)?.status === 'online' &&
        (states.at(-1)?.lastApply as { outcome?: string })?.outcome === 'rolled-back',
      10_000,
      'the state after rollback',
    );
    expect(states.at(-1)).toMatchObject({
      configVersion: 1,
      configHash: hashBefore,
      lastApply: { version: 2, outcome: 'rolled-back', rollback: 'ok', error: expect.stringMatching(/not connected/) },
    });
    // The uplink is back on the good broker and delivering.
    const n = events.length;
    await waitFor(() => events.length > n + 10, 10_000, 'deliveries after the rollback');
    // The uplink was replaced twice (dead host, then back) and kept its cursor: what was appended
    // while it pointed nowhere arrives too, no seq missing.
    const lastSeq = gw.gateway.log.stats().lastSeq;
    await waitFor(() => events.some((e) => e.seq >= lastSeq), 10_000, 'the backlog of the outage');
    const seqs = [...new Set(events.map((e) => e.seq))].sort((a, b) => a - b);
    expect(seqs[seqs.length - 1] - seqs[0] + 1).toBe(seqs.length);
    expect((await loadEffectiveConfig(validateConfig(baseConfig()), data.path)).version).toBe(1);
  }, 30_000);

  it('refuses each bad command with its reason and changes nothing', async () => {
    const hashBefore = configHash(gw.gateway.config);
    const priv = parsePrivateKey(readFileSync(keyFile, 'utf8'));
    const ping = signCommand(priv, { type: 'ping', device: ID, keyId: 'ops-1' });
    // Signed directly: `sluice fleet sign` would already refuse to sign an invalid config.
    const configSet = (version: number, config: unknown) =>
      JSON.stringify(signCommand(priv, { type: 'config.set', device: ID, keyId: 'ops-1', body: { version, config } }));
    const { sig: _sig, ...unsigned } = ping;
    const cases: [string, string, RegExp][] = [
      ['unsigned', JSON.stringify(unsigned), /unsigned/],
      [
        'tampered',
        JSON.stringify({
          ...signCommand(priv, { type: 'log.level', device: ID, keyId: 'ops-1', body: { level: 'info' } }),
          body: { level: 'trace' },
        }),
        /signature does not verify/,
      ],
      [
        'unknown key',
        JSON.stringify(signCommand(priv, { type: 'ping', device: ID, keyId: 'ops-9' })),
        /keyId "ops-9" is not in fleet.trustedKeys/,
      ],
      [
        'expired',
        JSON.stringify(
          signCommand(priv, {
            type: 'ping',
            device: ID,
            keyId: 'ops-1',
            issuedAt: Date.now() - 120_000,
            lifetimeMs: 60_000,
          }),
        ),
        /expired at/,
      ],
      [
        'wrong device',
        JSON.stringify(signCommand(priv, { type: 'ping', device: 'gw-other', keyId: 'ops-1' })),
        /for device "gw-other"/,
      ],
      ['malformed', '{"id": "m-1", "type": "ping", "sig": "x"', /not JSON/],
      ['malformed shape', JSON.stringify({ ...ping, issuedAt: 'now' }), /malformed: issuedAt/],
      [
        'unknown type',
        JSON.stringify(signCommand(priv, { type: 'reboot', device: ID, keyId: 'ops-1' })),
        /unknown command type "reboot"/,
      ],
      ['old version', configSet(1, operatorConfig({ drivers: [] })), /version 1 is not above the running version 1/],
      [
        'invalid config',
        configSet(5, operatorConfig({ buffer: { onFull: 'explode' } })),
        /invalid: buffer.onFull: must be one of/,
      ],
      ['no fleet section', configSet(5, { ...operatorConfig(), fleet: undefined }), /must keep a fleet section/],
      [
        'port taken',
        configSet(5, operatorConfig({ http: { host: '127.0.0.1', port: cloud.port } })),
        /failed its dry run: http: cannot listen on 127.0.0.1:\d+ \(EADDRINUSE\)/,
      ],
      [
        'serial path missing',
        configSet(
          5,
          operatorConfig({ drivers: [{ name: 'gps', type: 'serial', path: '/dev/ttyNOPE', topic: 'site/gps' }] }),
        ),
        /serial device "\/dev\/ttyNOPE" does not exist/,
      ],
    ];
    for (const [what, line, reason] of cases) {
      const res = await publishCommand(line);
      expect(res.ok, what).toBe(false);
      expect(res.error, what).toMatch(reason);
    }
    // The good ping goes through once; sent again it is a replay.
    expect(await publishCommand(JSON.stringify(ping))).toMatchObject({
      ok: true,
      result: { pong: true, configVersion: 1 },
    });
    expect(await publishCommand(JSON.stringify(ping))).toMatchObject({
      ok: false,
      error: expect.stringMatching(/already received \(replay\)/),
    });
    expect(configHash(gw.gateway.config)).toBe(hashBefore);
    expect(gw.gateway.logger.level).not.toBe('trace');
    const metrics = await gw.gateway.registry.getSingleMetricAsString('sluice_fleet_refused_total');
    expect(metrics).toMatch(/reason="bad-signature"} 1/);
  }, 60_000);

  it('runs the other command types', async () => {
    expect(await publishCommand(await signed('status'))).toMatchObject({ ok: true, result: { gateway: { id: ID } } });
    const get = await publishCommand(await signed('config.get'));
    expect(get).toMatchObject({ ok: true, result: { version: 1, hash: configHash(gw.gateway.config) } });
    expect(get.result?.config).toMatchObject({ uplinks: [{ name: 'cloud', username: 'gw', password: '(redacted)' }] });
    expect(JSON.stringify(get)).not.toContain('s3cret-pw');
    expect(await publishCommand(await signed('driver.restart', { name: 'sim2' }))).toMatchObject({
      ok: true,
      result: { restarted: 'sim2' },
    });
    expect(await publishCommand(await signed('driver.restart', { name: 'nope' }))).toMatchObject({
      ok: false,
      error: expect.stringMatching(/no running driver named "nope"/),
    });
    expect(await publishCommand(await signed('uplink.flush', {}))).toMatchObject({
      ok: true,
      result: { flushed: ['cloud'] },
    });
    expect(await publishCommand(await signed('log.level', { level: 'debug', for: '1s' }))).toMatchObject({
      ok: true,
      result: { level: 'debug' },
    });
    expect(gw.gateway.logger.level).toBe('debug');
    await waitFor(
      () => gw.gateway.logger.level === gw.gateway.config.gateway.logLevel,
      5_000,
      'the log level to revert',
    );
  }, 30_000);

  it('is marked offline by its last will when the connection dies, and online again when it is back', async () => {
    const n = states.length;
    // Cut the TCP connection under the client, as a power cut or a dead link would.
    (agent() as unknown as { client: mqtt.MqttClient }).client.stream.destroy();
    await waitFor(() => states.slice(n).some((s) => s.status === 'offline'), 10_000, 'the last will');
    expect(states.slice(n).find((s) => s.status === 'offline')).toMatchObject({ gateway: ID, configVersion: 1 });
    await waitFor(() => states.at(-1)?.status === 'online', 10_000, 'online after reconnecting');
  }, 25_000);

  it('applies a command queued while the gateway was stopped, boots the last-known-good config, and refuses a replay after a restart', async () => {
    const ports = { mqttPort: gw.mqttPort, httpPort: gw.httpPort };
    await sensor.endAsync();
    await gw.stop();
    await waitFor(() => states.at(-1)?.status === 'offline', 10_000, 'the offline state');
    const config = operatorConfig({
      drivers: [
        ...baseConfig().drivers,
        { name: 'sim3', type: 'simulator', interval: 100, sensors: [{ topic: 'sim/three/temp' }], seed: 3 },
      ],
      schedules: [{ name: 'report', cron: '* * * * * *', action: 'status' }],
    });
    const cmd = await signed('config.set', { version: 3, config });
    const r = spawnSync(
      'mosquitto_pub',
      ['-h', '127.0.0.1', '-p', String(cloud.port), '-q', '1', '-t', `${PREFIX}/${ID}/cmd`, '-m', cmd],
      {
        encoding: 'utf8',
      },
    );
    expect(r.status, r.stderr).toBe(0);
    const id = JSON.parse(cmd).id;

    // Restarted with the original file (version 0): it boots version 1, the last-known-good one,
    // then the broker hands it the queued command.
    gw = await startGateway(baseConfig(), ports);
    expect(gw.gateway.config.drivers.map((d) => d.name)).toEqual(['sim1', 'sim2']);
    const res = await waitFor(() => results.find((x) => x.id === id), 20_000, 'the queued command result');
    expect(res, res.error).toMatchObject({ ok: true, result: { outcome: 'applied', version: 3, previousVersion: 1 } });
    expect(gw.gateway.config.drivers.map((d) => d.name)).toContain('sim3');

    // Restarted again: version 3 runs, and the same command is a replay.
    await gw.stop();
    gw = await startGateway(baseConfig(), ports);
    expect(gw.gateway.config.fleet?.configVersion).toBe(3);
    await waitFor(
      () => states.at(-1)?.status === 'online' && states.at(-1)?.configVersion === 3,
      10_000,
      'online again',
    );
    const replay = await publishCommand(cmd);
    expect(replay).toMatchObject({ ok: false, error: expect.stringMatching(/replay/) });

    // The schedule that came with version 3 publishes the status report every second.
    const reports: Record<string, unknown>[] = [];
    const watcher = await mqtt.connectAsync(cloud.url, { clientId: 'status-reader' });
    watcher.on('message', (_t, p) => reports.push(JSON.parse(p.toString())));
    await watcher.subscribeAsync(`${PREFIX}/${ID}/status`, { qos: 1 });
    await waitFor(() => reports.length >= 2, 10_000, 'two scheduled status reports');
    await watcher.endAsync();
    expect(reports[0]).toMatchObject({ gateway: { id: ID }, uplinks: [expect.objectContaining({ name: 'cloud' })] });
    expect(gw.gateway.fleet?.status().schedules[0]).toMatchObject({ name: 'report', action: 'status', failures: 0 });
  }, 60_000);
});
