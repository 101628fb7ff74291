/** Wrong credentials at the MQTT and NATS peers: a clear error on status, nothing committed, delivery once fixed. */
import { execFileSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startMosquitto, startNats, tempDir } from '../test/helpers/peers.js';
import { MqttSink } from './mqtt/index.js';
import { mqttUplinkSchema } from './mqtt/schema.js';
import { NatsSink } from './nats/index.js';
import { natsUplinkSchema } from './nats/schema.js';
import type { CommonUplinkConfig } from './common-schema.js';
import type { Sink, SinkContext } from './sink.js';
import { memoryRunner } from '../test/helpers/uplink/memory-runner.js';
import { until } from '../test/helpers/until.js';
import { cleanupsAfterEach } from '../test/helpers/cleanups.js';

const cleanups = cleanupsAfterEach();

/** A runner over five waiting events, started. */
function run(config: CommonUplinkConfig, makeSink: (ctx: SinkContext) => Sink) {
  const { log, reader, runner, stop } = memoryRunner(config, makeSink);
  cleanups.push(stop);
  log.appendN(5);
  runner.start();
  return { reader, runner };
}

const fast = { retry: { initialDelay: 50, maxDelay: 200 }, reconnect: { minDelay: 50, maxDelay: 200 }, batch: { maxDelay: 0 } };

describe('wrong credentials', () => {
  it('mqtt: the broker refuses the password; status says so and the events wait', async () => {
    const dir = tempDir('sluice-mosq-auth-');
    cleanups.push(() => dir.cleanup());
    const passwd = join(dir.path, 'passwd');
    writeFileSync(passwd, '');
    execFileSync('mosquitto_passwd', ['-b', passwd, 'gw', 'right']);
    // Mosquitto drops root privileges to its own user: let it read the password file.
    chmodSync(dir.path, 0o755);
    chmodSync(passwd, 0o644);
    const peer = await startMosquitto(`allow_anonymous false\npassword_file ${passwd}`);
    cleanups.push(() => peer.stop());
    const port = peer.port;

    const config = mqttUplinkSchema.parse({
      name: 'cloud',
      type: 'mqtt',
      url: `mqtt://127.0.0.1:${port}`,
      username: 'gw',
      password: 'wrong',
      ackTimeout: '300ms',
      ...fast,
    });
    const { reader, runner } = run(config, (ctx) => new MqttSink(config, ctx));
    await until(() => runner.status().retried > 0 && /refused the credentials/.test(runner.status().lastError ?? ''));
    expect(runner.status().lastError).toBe(`mqtt://127.0.0.1:${port}: the server refused the credentials`);
    expect(runner.status().connected).toBe(false);
    expect(reader.committed).toBe(0);
  });

  it('nats: the server refuses the password; status says so and the events wait', async () => {
    const peer = await startNats(['--user', 'gw', '--pass', 'right']);
    cleanups.push(() => peer.stop());
    const port = peer.port;

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
    const { reader, runner } = run(config, (ctx) => new NatsSink(config, ctx));
    await until(() => runner.status().retried > 0 && /refused the credentials/.test(runner.status().lastError ?? ''));
    expect(runner.status().connected).toBe(false);
    expect(reader.committed).toBe(0);
  });
});
