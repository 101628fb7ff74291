/**
 * Outbound proxies, through a real HTTP CONNECT proxy started here that counts its tunnels: the
 * HTTP uplink (plain and TLS, per-uplink `proxy:` and HTTPS_PROXY/HTTP_PROXY), NO_PROXY and
 * `proxy: none` going direct, Kinesis (AWS SDK) to kinesalite, and MQTT over WebSocket to Mosquitto.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { CreateStreamCommand, DescribeStreamCommand, GetRecordsCommand, GetShardIteratorCommand, KinesisClient } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import kinesalite from 'kinesalite';
import mqtt from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../src/core/event.js';
import { validateConfig } from '../src/config/load.js';
import { redactConfig } from '../src/config/redact.js';
import { silentLogger } from '../src/core/log.js';
import { type SelfSigned, selfSignedCert } from '../test/helpers/certs.js';
import { type ConnectProxy, startConnectProxy } from '../test/helpers/connect-proxy.js';
import { freePort, type Peer, startMosquitto } from '../test/helpers/peers.js';
import { HttpSink } from './http/index.js';
import { httpUplinkSchema } from './http/schema.js';
import { KinesisSink } from './kinesis/index.js';
import { kinesisUplinkSchema } from './kinesis/schema.js';
import { MqttSink } from './mqtt/index.js';
import { mqttUplinkSchema } from './mqtt/schema.js';
import type { Batch } from './sink.js';

function event(seq: number): StoredEvent {
  const ts = Date.now();
  return { seq, ts, kind: 'reading', topic: 'line/a/t', json: JSON.stringify({ id: `gw-p:${seq}`, seq, ts, source: 'mqtt', topic: 'line/a/t', payload: { v: seq }, kind: 'reading' }) };
}
const batch = (...seqs: number[]): Batch => ({ gateway: 'gw-p', batchId: `${seqs[0]}-${seqs.at(-1)}`, events: seqs.map(event) });

const ENV = ['HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY', 'https_proxy', 'http_proxy', 'no_proxy'];
const savedEnv = Object.fromEntries(ENV.map((k) => [k, process.env[k]]));
afterEach(() => {
  for (const k of ENV) {
    if (savedEnv[k] === undefined) delete process.env[k];
    else process.env[k] = savedEnv[k];
  }
});

describe('uplinks behind a CONNECT proxy', () => {
  let proxy: ConnectProxy;
  let plain: Server;
  let secure: Server;
  let received = 0;
  let tls: SelfSigned;
  beforeAll(async () => {
    for (const k of ENV) delete process.env[k];
    proxy = await startConnectProxy();
    const onBatch = (req: IncomingMessage, res: import('node:http').ServerResponse) => {
      req.resume();
      req.on('end', () => {
        received++;
        res.writeHead(200).end();
      });
    };
    plain = createHttpServer(onBatch);
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    tls = selfSignedCert();
    secure = createHttpsServer(tls, onBatch);
    await new Promise<void>((r) => secure.listen(0, '127.0.0.1', r));
  });
  afterAll(async () => {
    await proxy?.close();
    for (const s of [plain, secure]) await new Promise((r) => s?.close(r));
    tls?.cleanup();
  });

  const port = (s: Server) => (s.address() as { port: number }).port;
  const httpSink = async (url: string, extra: Record<string, unknown> = {}) => {
    const sink = new HttpSink(httpUplinkSchema.parse({ name: 'h', type: 'http', url, timeout: '3s', ...extra }), { gatewayId: 'gw-p', logger: silentLogger });
    await sink.start();
    return sink;
  };
  const sendVia = async (sink: HttpSink) => {
    const before = received;
    const r = await sink.send(batch(1, 2));
    await sink.stop();
    expect(r.error).toBeUndefined();
    expect(r.accepted).toEqual([0, 1]);
    expect(received).toBe(before + 1);
  };

  it('HTTP: the per-uplink proxy tunnels a plain-http target', async () => {
    const n = proxy.tunnels.length;
    await sendVia(await httpSink(`http://127.0.0.1:${port(plain)}/in`, { proxy: proxy.url }));
    expect(proxy.tunnels.slice(n)).toContain(`127.0.0.1:${port(plain)}`);
  });

  it('HTTPS: HTTPS_PROXY from the environment, TLS end to end through the tunnel', async () => {
    process.env.HTTPS_PROXY = proxy.url;
    const n = proxy.tunnels.length;
    await sendVia(await httpSink(`https://127.0.0.1:${port(secure)}/in`, { tls: { ca: tls.certPath } }));
    expect(proxy.tunnels.slice(n)).toContain(`127.0.0.1:${port(secure)}`);
  });

  it('goes direct for NO_PROXY hosts and with proxy: none', async () => {
    process.env.HTTP_PROXY = proxy.url;
    process.env.NO_PROXY = '127.0.0.1';
    const n = proxy.tunnels.length;
    await sendVia(await httpSink(`http://127.0.0.1:${port(plain)}/in`));
    delete process.env.NO_PROXY;
    await sendVia(await httpSink(`http://127.0.0.1:${port(plain)}/in`, { proxy: 'none' }));
    expect(proxy.tunnels.length).toBe(n);
  });

  it('refuses a proxy that is not an http(s) URL', () => {
    const r = httpUplinkSchema.safeParse({ name: 'h', type: 'http', url: 'http://x/in', proxy: 'socks5://p:1080' });
    expect(r.success).toBe(false);
  });

  it('treats the proxy URL as a secret: its credentials never show where the config is echoed', () => {
    const c = validateConfig({ uplinks: [{ name: 'h', type: 'http', url: 'http://x/in', proxy: 'http://op:hunter2@proxy:3128' }] });
    expect(JSON.stringify(redactConfig(c))).not.toContain('hunter2');
  });

  it('Kinesis (AWS SDK) through the proxy to kinesalite', async () => {
    const server = kinesalite({ createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0 });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const endpoint = `http://127.0.0.1:${port(server)}`;
    const creds = { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' };
    const admin = new KinesisClient({ endpoint, region: 'us-east-1', credentials: { ...creds }, requestHandler: new NodeHttpHandler() });
    try {
      await admin.send(new CreateStreamCommand({ StreamName: 'px', ShardCount: 1 }));
      for (let i = 0; i < 50; i++) {
        const d = await admin.send(new DescribeStreamCommand({ StreamName: 'px' }));
        if (d.StreamDescription?.StreamStatus === 'ACTIVE') break;
        await new Promise((r) => setTimeout(r, 20));
      }
      const n = proxy.tunnels.length;
      const cfg = kinesisUplinkSchema.parse({ name: 'k', type: 'kinesis', endpoint, streamName: 'px', region: 'us-east-1', ...creds, proxy: proxy.url });
      const sink = new KinesisSink(cfg, { gatewayId: 'gw-p', logger: silentLogger });
      await sink.start();
      const r = await sink.send(batch(1, 2, 3));
      await sink.stop();
      expect(r.accepted).toEqual([0, 1, 2]);
      expect(proxy.tunnels.slice(n)).toContain(`127.0.0.1:${port(server)}`);
      const shard = (await admin.send(new DescribeStreamCommand({ StreamName: 'px' }))).StreamDescription!.Shards![0].ShardId!;
      const it = (await admin.send(new GetShardIteratorCommand({ StreamName: 'px', ShardId: shard, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
      const got = await admin.send(new GetRecordsCommand({ ShardIterator: it }));
      expect(got.Records?.length).toBeGreaterThan(0);
    } finally {
      admin.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  it('MQTT over WebSocket through the proxy to Mosquitto', async () => {
    const wsPort = await freePort();
    let broker: Peer | undefined;
    let sub: mqtt.MqttClient | undefined;
    try {
      broker = await startMosquitto(`listener ${wsPort} 127.0.0.1\nprotocol websockets\n`);
      sub = await mqtt.connectAsync(broker.url);
      const got: string[] = [];
      await sub.subscribeAsync('sluice/#', { qos: 1 });
      sub.on('message', (t) => got.push(t));
      const n = proxy.tunnels.length;
      const cfg = mqttUplinkSchema.parse({ name: 'm', type: 'mqtt', url: `ws://127.0.0.1:${wsPort}`, proxy: proxy.url, connectTimeout: '3s' });
      const sink = new MqttSink(cfg, { gatewayId: 'gw-p', logger: silentLogger });
      await sink.start();
      for (let i = 0; i < 100 && !sink.health().connected; i++) await new Promise((r) => setTimeout(r, 50));
      const r = await sink.send(batch(1));
      await sink.stop();
      expect(r.accepted).toEqual([0]);
      expect(proxy.tunnels.slice(n)).toContain(`127.0.0.1:${wsPort}`);
      for (let i = 0; i < 100 && got.length === 0; i++) await new Promise((r2) => setTimeout(r2, 20));
      expect(got).toEqual(['sluice/gw-p/events']);
    } finally {
      await sub?.endAsync();
      await broker?.stop();
    }
  });
});
