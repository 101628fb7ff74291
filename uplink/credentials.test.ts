/** Wrong credentials at the MQTT and NATS peers: a clear error on status, nothing committed, delivery once fixed. */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/core/log.js';
import { freePort, natsServerBin, tempDir, waitForPort } from '../test/helpers/peers.js';
import { MqttSink } from './mqtt/index.js';
import { mqttUplinkSchema } from './mqtt/schema.js';
import { NatsSink } from './nats/index.js';
import { natsUplinkSchema } from './nats/schema.js';
import type { CommonUplinkConfig } from './common-schema.js';
import { UplinkRunner } from './runner.js';
import type { Sink } from './sink.js';
import { MemoryLog } from '../test/helpers/uplink/memory-log.js';
import { until } from '../test/helpers/until.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function spawnPeer(cmd: string, args: string[], port: number): Promise<ChildProcess> {
  const p = spawn(cmd, args, { stdio: 'ignore' });
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        if (p.exitCode !== null || p.signalCode !== null) return resolve();
        p.once('exit', () => resolve());
        p.kill('SIGTERM');
      }),
  );
  await waitForPort(port);
  return p;
}

function run(config: CommonUplinkConfig, sink: Sink) {
  const log = new MemoryLog('gw-01');
  const reader = log.reader(config.name);
  const runner = new UplinkRunner({ config, sink, reader, gatewayId: 'gw-01', logger: silentLogger, registry: new Registry() });
  cleanups.push(() => runner.stop(2000));
  log.appendN(5);
  runner.start();
  return { reader, runner };
}

const fast = { retry: { initialDelay: 50, maxDelay: 200 }, reconnect: { minDelay: 50, maxDelay: 200 }, batch: { maxDelay: 0 } };

describe('wrong credentials', () => {
  it('mqtt: the broker refuses the password; status says so and the events wait', async () => {
    const dir = tempDir('sluice-mosq-auth-');
    cleanups.push(() => dir.cleanup());
    const port = await freePort();
    const passwd = join(dir.path, 'passwd');
    writeFileSync(passwd, '');
    execFileSync('mosquitto_passwd', ['-b', passwd, 'gw', 'right']);
    chmodSync(dir.path, 0o755);
    chmodSync(passwd, 0o644);
    const conf = join(dir.path, 'm.conf');
    writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous false\npassword_file ${passwd}\n`);
    await spawnPeer('mosquitto', ['-c', conf], port);

    const config = mqttUplinkSchema.parse({
      name: 'cloud',
      type: 'mqtt',
      url: `mqtt://127.0.0.1:${port}`,
      username: 'gw',
      password: 'wrong',
      ackTimeout: '300ms',
      ...fast,
    });
    const { reader, runner } = run(config, new MqttSink(config, { gatewayId: 'gw-01', logger: silentLogger }));
    await until(() => runner.status().retried > 0 && /refused the credentials/.test(runner.status().lastError ?? ''));
    expect(runner.status().lastError).toBe(`mqtt://127.0.0.1:${port}: the server refused the credentials`);
    expect(runner.status().connected).toBe(false);
    expect(reader.committed).toBe(0);
  });

  it('nats: the server refuses the password; status says so and the events wait', async () => {
    const bin = natsServerBin();
    const dir = tempDir('sluice-nats-auth-');
    cleanups.push(() => dir.cleanup());
    const port = await freePort();
    await spawnPeer(bin, ['-a', '127.0.0.1', '-p', String(port), '--user', 'gw', '--pass', 'right', '-js', '-sd', dir.path], port);

    const config = natsUplinkSchema.parse({
      name: 'js',
      type: 'nats',
      servers: [`nats://127.0.0.1:${port}`],
      subject: 'sluice.events',
      user: 'gw',
      pass: 'wrong',
      ackTimeout: '500ms',
      ...fast,
    });
    const { reader, runner } = run(config, new NatsSink(config, { gatewayId: 'gw-01', logger: silentLogger }));
    await until(() => runner.status().retried > 0 && /refused the credentials/.test(runner.status().lastError ?? ''));
    expect(runner.status().connected).toBe(false);
    expect(reader.committed).toBe(0);
  });
});
