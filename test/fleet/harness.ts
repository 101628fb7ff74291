/**
 * The fleet end-to-end harness: a real Mosquitto standing in for the cloud broker, a real Gateway
 * with a fleet section, an operator key made with `sluice keygen`, an operator client that records
 * every command result, retained state and forwarded event, and a sensor on the gateway's broker.
 * `useFleetHarness()` registers the set-up and tear-down of one describe block.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, expect } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { type FleetAgent, loadEffectiveConfig } from '../../src/fleet/index.js';
import { Gateway } from '../../src/gateway.js';
import { sluice } from '../helpers/cli.js';
import { waitFor } from '../helpers/gateway.js';
import { freePort, type Peer, startMosquitto, tempDir } from '../helpers/peers.js';

export interface TestGateway {
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
export async function startGateway(
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

export interface Result {
  id: string | null;
  ok: boolean;
  error?: string;
  result?: Record<string, unknown>;
}

export const ID = 'gw-fleet';
export const PREFIX = 'sluice';

export interface FleetHarness {
  cloud: Peer;
  gw: TestGateway;
  /** A sensor connected to the gateway's own broker: a config change must not drop it. */
  sensor: mqtt.MqttClient;
  sensorClosed: number;
  keyFile: string;
  keys: { path: string };
  data: { path: string };
  results: Result[];
  states: Record<string, unknown>[];
  events: { seq: number; topic: string; ts: number }[];
  agent(): FleetAgent;
  baseConfig(): ReturnType<typeof baseConfigOf>;
  operatorConfig(over?: Record<string, unknown>): Record<string, unknown>;
  publishCommand(line: string): Promise<Result>;
  signed(type: string, body?: unknown, extra?: string[]): Promise<string>;
}

function baseConfigOf(h: Pick<FleetHarness, 'cloud' | 'data'>, trusted: { keyId: string; publicKey: string }, configVersion?: number) {
  return {
    gateway: { id: ID, dataDir: h.data.path },
    uplinks: [
      { name: 'cloud', type: 'mqtt' as const, url: h.cloud.url, topicPrefix: PREFIX, batch: { maxDelay: 20 }, username: 'gw', password: 's3cret-pw' },
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
    fleet: { uplink: 'cloud', topicPrefix: PREFIX, trustedKeys: [trusted], healthTimeout: '4s', ...(configVersion ? { configVersion } : {}) },
  };
}

/** `configVersion`: the version the gateway's own config file carries (the running version at start). */
export function useFleetHarness(opts: { configVersion?: number } = {}): FleetHarness {
  let operator: mqtt.MqttClient;
  let trusted: { keyId: string; publicKey: string };
  const keys = tempDir('sluice-fleet-keys-');
  const data = tempDir('sluice-fleet-data-');
  const h = {
    sensorClosed: 0,
    keys,
    data,
    results: [],
    states: [],
    events: [],
    agent: () => h.gw.gateway.fleet as FleetAgent,
    baseConfig: () => baseConfigOf(h, trusted, opts.configVersion),
    /** The config an operator would write for version N (no gateway section: each gateway keeps its own). */
    operatorConfig: (over: Record<string, unknown> = {}) => {
      const { gateway: _g, fleet, ...rest } = h.baseConfig();
      // The command carries the version: the config's own fleet.configVersion is left out.
      const { configVersion: _v, ...fleetRest } = fleet as typeof fleet & { configVersion?: number };
      return {
        ...rest,
        fleet: fleetRest,
        http: { host: '127.0.0.1', port: h.gw.httpPort },
        broker: { listeners: [{ host: '127.0.0.1', port: h.gw.mqttPort }] },
        buffer: { commitInterval: 2 },
        ...over,
      };
    },
    publishCommand,
    signed,
  } as unknown as FleetHarness;

  async function publishCommand(line: string): Promise<Result> {
    const id = (() => {
      try {
        return (JSON.parse(line) as { id?: string }).id ?? null;
      } catch {
        return null;
      }
    })();
    const before = h.results.length;
    const r = spawnSync(
      'mosquitto_pub',
      ['-h', '127.0.0.1', '-p', String(h.cloud.port), '-q', '1', '-t', `${PREFIX}/${ID}/cmd`, '-m', line],
      {
        encoding: 'utf8',
        timeout: 10_000,
      },
    );
    expect(r.status, r.stderr).toBe(0);
    return waitFor(() => h.results.slice(before).find((x) => x.id === id), 20_000, `the result of ${id}`);
  }

  async function signed(type: string, body?: unknown, extra: string[] = []): Promise<string> {
    const args = ['fleet', 'sign', '--key', h.keyFile, '--device', ID, '--type', type, ...extra];
    if (body !== undefined) {
      const file = join(h.keys.path, `body-${Math.random().toString(36).slice(2)}.json`);
      writeFileSync(file, JSON.stringify(body));
      args.push('--body', file);
    }
    const r = await sluice(...args);
    expect(r.code, r.err).toBe(0);
    return r.out.trim();
  }

  beforeAll(async () => {
    h.cloud = await startMosquitto('', true);
    const gen = await sluice('keygen', '--out', keys.path, '--id', 'ops-1');
    trusted = JSON.parse(gen.out);
    h.keyFile = join(keys.path, 'ops-1.key');

    operator = await mqtt.connectAsync(h.cloud.url, { clientId: 'operator' });
    operator.on('message', (topic, payload) => {
      if (payload.length === 0) return;
      const doc = JSON.parse(payload.toString());
      if (topic.endsWith('/cmd/result')) h.results.push(doc);
      else if (topic.endsWith('/state')) h.states.push(doc);
      else if (topic.endsWith('/events'))
        for (const e of doc.events) h.events.push({ seq: e.seq, topic: e.topic, ts: e.ts });
    });
    await operator.subscribeAsync([`${PREFIX}/${ID}/cmd/result`, `${PREFIX}/${ID}/state`, `${PREFIX}/${ID}/events`], {
      qos: 1,
    });

    h.gw = await startGateway(h.baseConfig());
    await waitFor(() => h.states.some((s) => s.status === 'online'), 10_000, 'the online state');

    // A sensor connected to the gateway's own broker: a config change must not drop it.
    h.sensor = await mqtt.connectAsync(`mqtt://127.0.0.1:${h.gw.mqttPort}`, { clientId: 'sensor-1' });
    h.sensor.on('close', () => h.sensorClosed++);
  }, 30_000);

  afterAll(async () => {
    await h.sensor?.endAsync().catch(() => {});
    await h.gw?.stop();
    await operator?.endAsync();
    await h.cloud?.stop();
    keys.cleanup();
    data.cleanup();
  });
  return h;
}
