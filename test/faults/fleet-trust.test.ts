/**
 * Fleet commands against the compiled gateway and a real Mosquitto as the cloud broker:
 * - a command that expired is not accepted again after the gateway reboots with an unset clock
 *   (a Pi without RTC boots in 1970; its id was pruned from the replay store once it expired), while
 *   a fresh command still is (deploy/SECURITY.md "Fleet commands and the clock");
 * - `config.get` shows the running config with no secret in it: uplink passwords, tokens and keys,
 *   connection strings, URL passwords, HTTP headers, ingest token hashes and user password hashes.
 *
 * The unset clock is a preload (`--import`) that shifts Date in the gateway process only.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/auth/password.js';
import { sluice } from '../helpers/cli.js';
import { deployedEnvironment } from '../helpers/deployed-env.js';
import { type Peer, startMosquitto, tempDir } from '../helpers/peers.js';
import { until } from '../helpers/until.js';
import { type ChildGateway, startChildGateway } from './child-gateway.js';

const ID = 'gw-trust';
const PREFIX = 'sluice';
const ROOT = new URL('../..', import.meta.url).pathname;

interface Result {
  id: string | null;
  ok: boolean;
  error?: string;
  result?: Record<string, unknown>;
}

describe('fleet trust against the compiled gateway', () => {
  let cloud: Peer;
  let operator: mqtt.MqttClient;
  let gw: ChildGateway | undefined;
  const results: Result[] = [];
  const keys = tempDir('sluice-trust-keys-');
  const data = tempDir('sluice-trust-data-');
  let trusted: { keyId: string; publicKey: string };
  let keyFile: string;

  /** Where the preload lives; `offsetMs` moves the gateway's clock (Date only, not timers). */
  function clockEnv(offsetMs: number): Record<string, string> {
    const preload = join(keys.path, 'fake-clock.mjs');
    writeFileSync(
      preload,
      `const offset = ${offsetMs};
const Real = Date;
class FakeDate extends Real {
  constructor(...a) { if (a.length === 0) super(Real.now() + offset); else super(...a); }
  static now() { return Real.now() + offset; }
}
globalThis.Date = FakeDate;
`,
    );
    const base = deployedEnvironment(ROOT).NODE_OPTIONS ?? '';
    return { NODE_OPTIONS: `${base} --import ${preload}`.trim() };
  }

  const fleetConfig = (extra: Record<string, unknown> = {}) => ({
    gateway: { id: ID },
    uplinks: [{ name: 'cloud', type: 'mqtt', url: cloud.url, topicPrefix: PREFIX, username: 'gw', password: 'mqtt-pass-9f1' }],
    fleet: { uplink: 'cloud', topicPrefix: PREFIX, trustedKeys: [trusted], clockSkew: '1s' },
    ...extra,
  });

  async function publish(line: string): Promise<Result> {
    const id = (JSON.parse(line) as { id: string }).id;
    const before = results.length;
    const r = spawnSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(cloud.port), '-q', '1', '-t', `${PREFIX}/${ID}/cmd`, '-m', line], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    expect(r.status, r.stderr).toBe(0);
    let found: Result | undefined;
    await until(() => (found = results.slice(before).find((x) => x.id === id)) !== undefined, 20_000);
    return found!;
  }

  async function sign(type: string, ...extra: string[]): Promise<string> {
    const r = await sluice('fleet', 'sign', '--key', keyFile, '--device', ID, '--type', type, ...extra);
    expect(r.code, r.err).toBe(0);
    return r.out.trim();
  }

  async function refusedCount(reason: string): Promise<number> {
    const text = await (await fetch(`${gw!.url}/metrics`)).text();
    const m = new RegExp(`sluice_fleet_refused_total\\{[^}]*reason="${reason}"[^}]*\\} (\\d+)`).exec(text);
    return m ? Number(m[1]) : 0;
  }

  beforeAll(async () => {
    cloud = await startMosquitto('', true);
    const gen = await sluice('keygen', '--out', keys.path, '--id', 'ops-1');
    trusted = JSON.parse(gen.out);
    keyFile = join(keys.path, 'ops-1.key');
    operator = await mqtt.connectAsync(cloud.url, { clientId: 'operator' });
    operator.on('message', (_t, payload) => {
      if (payload.length > 0) results.push(JSON.parse(payload.toString()));
    });
    await operator.subscribeAsync(`${PREFIX}/${ID}/cmd/result`, { qos: 1 });
  }, 30_000);

  afterAll(async () => {
    await gw?.stop();
    await operator?.endAsync();
    await cloud?.stop();
    keys.cleanup();
    data.cleanup();
  });

  it('refuses an expired command replayed after a reboot with an unset clock, and still accepts a fresh one', async () => {
    gw = await startChildGateway(fleetConfig(), { dataDir: data.path });
    const old = await sign('status', '--expires', '1s');
    expect(await publish(old)).toMatchObject({ ok: true });
    // Once it expired (and the skew passed), the next accepted command prunes its id.
    await new Promise((r) => setTimeout(r, 2_500));
    expect(await publish(await sign('status'))).toMatchObject({ ok: true });
    expect(await publish(old)).toMatchObject({ ok: false, error: expect.stringMatching(/expired/) });
    await gw.stop();

    // Rebooted without a set clock: it reads 1970.
    gw = await startChildGateway(fleetConfig(), { dataDir: data.path, env: clockEnv(-Date.now() + 3_600_000) });
    const replay = await publish(old);
    expect(replay).toMatchObject({ ok: false, error: expect.stringMatching(/command expired at/) });
    expect(await refusedCount('expired')).toBe(1);
    expect(await publish(await sign('status'))).toMatchObject({ ok: true });
  }, 90_000);

  it('shows the running config over config.get with every secret redacted', async () => {
    await gw?.stop();
    const secrets = {
      mqtt: 'mqtt-pass-9f1',
      bearer: 'bearer-7c2e',
      header: 'hdr-key-51aa',
      natsToken: 'nats-tok-3b9',
      kinesis: 'kin-secret-0d4',
      kinesisSession: 'kin-session-8e8',
      s3: 's3-secret-b71',
      eventhubs: 'SharedAccessKey=eh-key-6f0',
      amqp: 'amqp-pw-2c3',
      kafka: 'kafka-pw-44d',
    };
    const userHash = await hashPassword('sensor-pw');
    const tokenHash = await hashPassword('ingest-token-x');
    const dead = 'http://127.0.0.1:9/';
    gw = await startChildGateway(
      fleetConfig({
        broker: { allowAnonymous: false, users: [{ username: 'sensor', passwordHash: userHash, tokenHash }] },
        uplinks: [
          ...(fleetConfig().uplinks as unknown[]),
          { name: 'web', type: 'http', url: dead, bearerToken: secrets.bearer, headers: { 'x-api-key': secrets.header } },
          { name: 'nats', type: 'nats', servers: ['nats://127.0.0.1:9'], subject: 's', token: secrets.natsToken },
          { name: 'kin', type: 'kinesis', streamName: 's', region: 'eu-west-1', endpoint: dead, accessKeyId: 'AKIATEST', secretAccessKey: secrets.kinesis, sessionToken: secrets.kinesisSession },
          { name: 'bucket', type: 's3', bucket: 'sluice-bucket', region: 'eu-west-1', endpoint: dead, accessKeyId: 'AKIATEST', secretAccessKey: secrets.s3 },
          { name: 'eh', type: 'eventhubs', connectionString: `Endpoint=sb://127.0.0.1:9/;SharedAccessKeyName=send;${secrets.eventhubs};EntityPath=e` },
          { name: 'rabbit', type: 'amqp', url: `amqp://guest:${secrets.amqp}@127.0.0.1:9`, exchange: 'x' },
          { name: 'kafka', type: 'kafka', brokers: ['127.0.0.1:9'], topic: 't', sasl: { mechanism: 'plain', username: 'u', password: secrets.kafka } },
        ],
      }),
      { dataDir: tempDir('sluice-trust-redact-').path },
    ).catch((err: Error) => {
      throw new Error(`the secret-laden config did not start (adjust it to the schema): ${err.message}`);
    });
    const got = await publish(await sign('config.get'));
    expect(got.ok, got.error).toBe(true);
    const text = JSON.stringify(got);
    for (const [what, s] of Object.entries({ ...secrets, userHash, tokenHash })) expect(text, what).not.toContain(s.replace('SharedAccessKey=', ''));
    expect(text).toContain('(redacted)');
    // The config is still the running one, with its non-secret parts intact.
    expect(text).toContain('AKIATEST');
    expect(text).toContain('"name":"kafka"');
  }, 60_000);
});
