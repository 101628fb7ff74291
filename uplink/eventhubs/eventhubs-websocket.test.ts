/**
 * The Event Hubs uplink over AMQP over WebSocket, end to end: the runner reads a log, the sink
 * speaks AMQP 1.0 over `wss://127.0.0.1:PORT/$servicebus/websocket` (subprotocol AMQPWSB10, TLS with
 * a self-signed certificate trusted through `tls.ca`), through a real HTTP CONNECT proxy, into a
 * WebSocket front that pipes the bytes to RabbitMQ's AMQP 1.0 port; the messages are read back from
 * the queue with amqplib. The `$cbs` token exchange over WebSocket is in eventhubs-peer.test.ts.
 */
import { Writable } from 'node:stream';
import amqplib from 'amqplib';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type SelfSigned, selfSignedCert } from '../../test/helpers/certs.js';
import { type ConnectProxy, startConnectProxy } from '../../test/helpers/connect-proxy.js';
import { ensureRabbitMQAmqp10, freePort } from '../../test/helpers/peers.js';
import { until } from '../../test/helpers/until.js';
import { memoryRunner } from '../../test/helpers/uplink/memory-runner.js';
import { startWsBridge, type WsBridge } from '../../test/helpers/ws-bridge.js';
import { EventHubsSink } from './index.js';
import { eventHubsUplinkSchema } from './schema.js';
import { resolveTransport } from './websocket.js';

const ENV = ['HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY', 'https_proxy', 'http_proxy', 'no_proxy', 'ALL_PROXY', 'all_proxy'];
const savedEnv = Object.fromEntries(ENV.map((k) => [k, process.env[k]]));
const clearEnv = () => {
  for (const k of ENV) delete process.env[k];
};
const restoreEnv = () => {
  for (const k of ENV) {
    if (savedEnv[k] === undefined) delete process.env[k];
    else process.env[k] = savedEnv[k];
  }
};

let conn: amqplib.ChannelModel;
let ch: amqplib.Channel;
let cert: SelfSigned;
let bridge: WsBridge;
let proxy: ConnectProxy;
const queues: string[] = [];
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  const { url } = await ensureRabbitMQAmqp10();
  conn = await amqplib.connect(url);
  ch = await conn.createChannel();
  cert = selfSignedCert();
  bridge = await startWsBridge({ targetPort: 5672, path: '/$servicebus/websocket', protocol: 'AMQPWSB10', tls: cert });
  proxy = await startConnectProxy();
}, 90_000);

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  clearEnv();
});

afterAll(async () => {
  restoreEnv();
  for (const q of queues) await ch.deleteQueue(q).catch(() => undefined);
  await conn?.close();
  await bridge?.close();
  await proxy?.close();
  cert?.cleanup();
});

/** A fresh queue and the seqs that reach it, in arrival order. */
async function queue(): Promise<{ name: string; seqs: number[] }> {
  const name = `sluice-ehws-${process.pid}-${queues.length}-${Date.now() % 100000}`;
  await ch.assertQueue(name, { durable: false });
  queues.push(name);
  const seqs: number[] = [];
  await ch.consume(name, (m) => m && seqs.push(JSON.parse(m.content.toString()).seq), { noAck: true });
  return { name, seqs };
}

const config = (address: string, extra: Record<string, unknown> = {}) =>
  eventHubsUplinkSchema.parse({
    name: 'hub',
    type: 'eventhubs',
    host: '127.0.0.1',
    port: bridge.port,
    auth: 'plain',
    keyName: 'guest',
    key: 'guest',
    address,
    tls: { ca: cert.certPath },
    connectTimeout: '3s',
    ackTimeout: '3s',
    batch: { maxEvents: 100, maxDelay: 5 },
    retry: { initialDelay: 50, maxDelay: 300 },
    ...extra,
  });

/** A runner over a memory log with the sink, logging warnings into `logged`. */
function setup(cfg: ReturnType<typeof config>) {
  const logged: string[] = [];
  const logger = pino({ level: 'warn' }, new Writable({ write: (chunk, _enc, cb) => cb(void logged.push(String(chunk))) }));
  const run = memoryRunner(cfg, (ctx) => new EventHubsSink(cfg, ctx), { gatewayId: 'gw-ws', logger });
  cleanups.push(run.stop);
  return { ...run, logged };
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('eventhubs uplink over WebSocket through a CONNECT proxy', () => {
  it('with HTTPS_PROXY set and no transport configured, goes AMQP over wss through the tunnel, in order', async () => {
    clearEnv();
    process.env.HTTPS_PROXY = proxy.url;
    const q = await queue();
    const tunnels = proxy.tunnels.length;
    const upgrades = bridge.upgrades.length;
    const cfg = config(q.name);
    expect(cfg.transport).toBeUndefined();
    const { log, reader, runner } = setup(cfg);
    log.appendN(300);
    runner.start();
    await until(() => reader.committed === 300 && q.seqs.length >= 300, 20_000, '300 events through the proxy');
    expect(q.seqs).toEqual(range(1, 300));
    expect(proxy.tunnels.slice(tunnels)).toEqual([`127.0.0.1:${bridge.port}`]);
    expect(bridge.upgrades.slice(upgrades)).toEqual([{ path: '/$servicebus/websocket', protocol: 'AMQPWSB10' }]);
    expect(runner.status()).toMatchObject({ connected: true, lastError: null });
  });

  it('a proxy refusing CONNECT (407, then 403) shows in status and log; nothing is lost once it lets the tunnel through', async () => {
    const q = await queue();
    const cfg = config(q.name, { transport: 'websocket', proxy: proxy.url, reconnect: { minDelay: 50, maxDelay: 200 } });
    const { log, reader, runner, logged } = setup(cfg);
    const tunnels = proxy.tunnels.length;
    proxy.refuse(407);
    cleanups.push(() => proxy.refuse(undefined));
    log.appendN(120);
    runner.start();
    const target = `127.0.0.1:${bridge.port}`;
    await until(() => /407/.test(runner.status().lastError ?? ''), 10_000, 'the 407 in status');
    expect(runner.status().lastError).toBe(
      `Event Hubs: the proxy ${proxy.url}/ refused the tunnel to ${target} (407 Proxy Authentication Required): ` +
        'it wants credentials, which go in the proxy URL',
    );
    expect(runner.status().connected).toBe(false);
    expect(logged.join('')).toContain('407 Proxy Authentication Required');
    proxy.refuse(403);
    await until(() => /403 Forbidden/.test(runner.status().lastError ?? ''), 10_000, 'the 403 in status');
    expect(runner.status().lastError).toMatch(/the proxy .* refused the tunnel to 127\.0\.0\.1:\d+ \(403 Forbidden\)$/);
    expect(reader.committed).toBe(0);
    expect(q.seqs).toEqual([]);
    log.appendN(80); // events keep arriving while the proxy refuses
    const refusals = proxy.refusals;
    expect(refusals).toBeGreaterThanOrEqual(2);
    proxy.refuse(undefined);
    await until(() => reader.committed === 200 && q.seqs.length >= 200, 20_000, 'all 200 events after the proxy allows');
    expect(q.seqs).toEqual(range(1, 200));
    // Every attempt, refused or not, asked for the hub's host and port, never anything else.
    expect(new Set(proxy.tunnels.slice(tunnels))).toEqual(new Set([target]));
    expect(proxy.tunnels.length - tunnels).toBeGreaterThan(refusals - 1);
    expect(runner.status().connected).toBe(true); // lastError stays, with lastErrorAt, as the runner keeps it
  });

  it('a WebSocket dropped mid-stream is reconnected through the proxy; at least once, first deliveries in order', async () => {
    const q = await queue();
    const { log, reader, runner, logged } = setup(config(q.name, { proxy: proxy.url, reconnect: { minDelay: 50, maxDelay: 200 } }));
    log.append(Array.from({ length: 3000 }, (_, i) => ({ source: 'test', topic: 'line/a/t', payload: { i, pad: 'p'.repeat(200) } })));
    runner.start();
    const tunnels = proxy.tunnels.length;
    await until(() => reader.committed >= 300, 20_000, 'the first batches');
    const atCut = reader.committed;
    bridge.cut();
    expect(atCut).toBeLessThan(3000);
    await until(() => reader.committed === 3000, 30_000, 'all 3000 events after the cut');
    await until(() => new Set(q.seqs).size === 3000, 10_000, 'every seq in the queue');
    // Duplicates are allowed (the unsettled tail is resent), gaps and reordering are not.
    expect([...new Set(q.seqs)]).toEqual(range(1, 3000));
    expect(proxy.tunnels.length - tunnels).toBeGreaterThanOrEqual(2); // the first connection and the one after the cut
    expect(logged.join('')).toMatch(/lost the WebSocket connection to 127\.0\.0\.1:\d+ \(close code 1006\)/);
  });

  it('NO_PROXY bypasses the proxy: forced websocket goes direct, and unset transport stays on tls', async () => {
    clearEnv();
    process.env.HTTPS_PROXY = proxy.url;
    process.env.NO_PROXY = 'localhost,127.0.0.1';
    const q = await queue();
    const tunnels = proxy.tunnels.length;
    const upgrades = bridge.upgrades.length;
    const { log, reader, runner } = setup(config(q.name, { transport: 'websocket' }));
    log.appendN(50);
    runner.start();
    await until(() => reader.committed === 50 && q.seqs.length >= 50, 20_000, '50 events direct');
    expect(q.seqs).toEqual(range(1, 50));
    expect(proxy.tunnels.length).toBe(tunnels);
    expect(bridge.upgrades.length).toBe(upgrades + 1);
    expect(resolveTransport({}, '127.0.0.1')).toBe('tls');
    expect(resolveTransport({}, 'ns.servicebus.windows.net')).toBe('websocket');
  });

  it('says which hop failed: an unreachable proxy, or a hub refusing the upgrade (wrong subprotocol)', async () => {
    const one = { gateway: 'gw-ws', batchId: '1-1', events: [{ seq: 1, ts: 1, kind: 'reading' as const, topic: 't', json: '{}' }] };
    const sinkWith = (extra: Record<string, unknown>) => {
      const sink = new EventHubsSink(config('x', { transport: 'websocket', ...extra }), { gatewayId: 'gw-ws', logger: pino({ level: 'silent' }) });
      cleanups.push(() => sink.stop());
      return sink;
    };
    const nobody = `http://127.0.0.1:${await freePort()}`;
    await expect(sinkWith({ proxy: nobody }).send(one)).rejects.toThrow(`cannot reach the proxy ${nobody}/ (ECONNREFUSED)`);
    // A bridge that wants another subprotocol stands for a mistyped endpoint.
    const strict = await startWsBridge({ targetPort: 5672, path: '/$servicebus/websocket', protocol: 'OTHER', tls: cert });
    cleanups.push(() => strict.close());
    await expect(sinkWith({ port: strict.port }).send(one)).rejects.toThrow(
      /wss:\/\/127\.0\.0\.1:\d+\/\$servicebus\/websocket refused the WebSocket upgrade \(HTTP 401\)/,
    );
  });
});

describe('transport choice', () => {
  afterEach(clearEnv);
  const base = { name: 'hub', type: 'eventhubs', host: 'ns.servicebus.windows.net', eventHub: 'h', keyName: 'k', key: 'v' };

  it('is tls without a proxy, websocket when one applies (proxy: URL or HTTPS_PROXY), and as configured when set', () => {
    clearEnv();
    const parse = (extra: Record<string, unknown> = {}) => eventHubsUplinkSchema.parse({ ...base, ...extra });
    const host = 'ns.servicebus.windows.net';
    expect(resolveTransport(parse(), host)).toBe('tls');
    expect(resolveTransport(parse({ proxy: 'http://proxy.plant:3128' }), host)).toBe('websocket');
    process.env.HTTPS_PROXY = 'http://proxy.plant:3128';
    expect(resolveTransport(parse(), host)).toBe('websocket');
    expect(resolveTransport(parse({ proxy: 'none' }), host)).toBe('tls');
    expect(resolveTransport(parse({ transport: 'tls' }), host)).toBe('tls');
    process.env.NO_PROXY = '.servicebus.windows.net';
    expect(resolveTransport(parse(), host)).toBe('tls');
    expect(resolveTransport(parse({ transport: 'websocket' }), host)).toBe('websocket');
  });

  it('refuses a proxy with transport tls or tcp (a CONNECT proxy passes HTTPS, not AMQP), keeps tcp configs valid', () => {
    const bad = eventHubsUplinkSchema.safeParse({ ...base, transport: 'tls', proxy: 'http://proxy.plant:3128' });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]).toMatchObject({ path: ['proxy'], message: expect.stringMatching(/only transport: websocket/) });
    expect(eventHubsUplinkSchema.parse({ ...base, transport: 'tcp', port: 5672 }).transport).toBe('tcp');
    expect(eventHubsUplinkSchema.parse({ ...base, transport: 'tls', proxy: 'none' }).transport).toBe('tls');
    expect(eventHubsUplinkSchema.safeParse({ ...base, transport: 'amqp' }).success).toBe(false);
  });
});
