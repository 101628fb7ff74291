/** The MQTT uplink over TLS with a client certificate, and through a link that stops answering. */
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy } from '../../test/helpers/fault-proxy.js';
import { type CertAuthority, type CertFiles, certAuthority, mosquittoClientCertTls } from '../../test/helpers/certs.js';
import { startMosquitto } from '../../test/helpers/peers.js';
import { memoryRunner } from '../../test/helpers/uplink/memory-runner.js';
import { MqttSink } from './index.js';
import { mqttUplinkSchema } from './schema.js';
import { until } from '../../test/helpers/until.js';
import { cleanupsAfterEach } from '../../test/helpers/cleanups.js';

// A private CA, a server certificate for 127.0.0.1 and a client certificate, all signed by it.
let ca: CertAuthority;
let server: CertFiles;
let client: CertFiles;
beforeAll(() => {
  ca = certAuthority();
  server = ca.server();
  client = ca.client('gw-01');
});
afterAll(() => ca?.cleanup());

const cleanups = cleanupsAfterEach();

function setup(url: string, extra: Record<string, unknown> = {}) {
  const config = mqttUplinkSchema.parse({
    name: 'cloud',
    type: 'mqtt',
    url,
    batch: { maxEvents: 100, maxDelay: 5 },
    retry: { initialDelay: 50, maxDelay: 300 },
    reconnect: { minDelay: 50, maxDelay: 200 },
    ...extra,
  });
  const run = memoryRunner(config, (ctx) => new MqttSink(config, ctx));
  cleanups.push(run.stop);
  return run;
}

describe('mqtt uplink, TLS and faults', () => {
  it('connects with a client certificate to a broker that requires one, verifying the broker against the CA', async () => {
    const peer = await startMosquitto(mosquittoClientCertTls(ca, server));
    cleanups.push(() => peer.stop());
    const url = `mqtts://127.0.0.1:${peer.port}`;
    const got: number[] = [];
    const sub = await mqtt.connectAsync(url, {
      ca: [ca.cert],
      cert: client.cert,
      key: client.key,
    });
    cleanups.push(() => sub.endAsync(true));
    sub.on('message', (_t, p) => got.push(...JSON.parse(p.toString()).events.map((e: { seq: number }) => e.seq)));
    await sub.subscribeAsync('sluice/gw-01/events', { qos: 1 });

    const { log, reader, runner } = setup(url, {
      tls: { ca: ca.certPath, cert: client.certPath, key: client.keyPath },
    });
    log.appendN(300);
    runner.start();
    await until(() => reader.committed === 300 && got.length >= 300);
    expect(got).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
  });

  it('without the client certificate it is refused, says so, and keeps the events', async () => {
    const peer = await startMosquitto(mosquittoClientCertTls(ca, server));
    cleanups.push(() => peer.stop());
    const { log, reader, runner } = setup(`mqtts://127.0.0.1:${peer.port}`, { tls: { ca: ca.certPath }, ackTimeout: '500ms' });
    log.appendN(3);
    runner.start();
    await until(() => runner.status().retried > 0 && runner.status().lastError !== null);
    expect(runner.status().connected).toBe(false);
    expect(runner.status().lastError).toMatch(
      /^mqtts:\/\/127\.0\.0\.1:\d+: the server requires a client certificate \(set tls.cert and tls.key\)$/,
    );
    expect(reader.committed).toBe(0);
  });

  it('a link that stops answering (blackhole): the PUBACK timeout re-makes the connection and nothing is lost', async () => {
    const peer = await startMosquitto();
    cleanups.push(() => peer.stop());
    const proxy = await startFaultProxy({ targetPort: peer.port });
    cleanups.push(() => proxy.close());
    const got = new Set<number>();
    const sub = await mqtt.connectAsync(peer.url);
    cleanups.push(() => sub.endAsync(true));
    sub.on('message', (_t, p) => {
      for (const e of JSON.parse(p.toString()).events) got.add(e.seq);
    });
    await sub.subscribeAsync('sluice/gw-01/events', { qos: 1 });

    const { log, reader, runner } = setup(proxy.url('mqtt'), { ackTimeout: '700ms', connectTimeout: '700ms', keepalive: '60s' });
    runner.start();
    log.appendN(200);
    await until(() => reader.committed === 200);
    proxy.blackhole(true);
    log.appendN(200);
    await until(() => runner.status().lastError?.includes('PUBACK') === true);
    expect(reader.committed).toBe(200);
    proxy.blackhole(false);
    await until(() => reader.committed === 400);
    await until(() => got.size === 400);
  });
});
