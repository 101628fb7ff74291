/**
 * What RabbitMQ cannot show: Event Hubs' own protocol behaviour. Event Hubs does not run here, so
 * this is a minimal AMQP 1.0 peer on rhea's server side that does what the hub does at the three
 * points the sink depends on: a `$cbs` node that checks the SAS token's signature before a link to
 * the hub may attach, `rejected` outcomes with a condition (a poison message; `server-busy` when
 * throttled), and the `x-opt-partition-key` annotation. The token exchange is also run over AMQP over
 * WebSocket through a CONNECT proxy (test/helpers/ws-bridge.ts in front of this peer).
 */
import { createHmac } from 'node:crypto';
import type { AddressInfo, Server, Socket } from 'node:net';
import rhea, { type EventContext, type Message } from 'rhea';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../src/core/event.js';
import { silentLogger } from '../../src/core/log.js';
import { EventHubsSink } from './index.js';
import { eventHubsUplinkSchema } from './schema.js';
import { batchOf, storedEvents } from '../../test/helpers/uplink/stored-events.js';
import { selfSignedCert } from '../../test/helpers/certs.js';
import { startConnectProxy } from '../../test/helpers/connect-proxy.js';
import { startWsBridge } from '../../test/helpers/ws-bridge.js';

const KEY = 'c2VjcmV0LWtleQ==';
let server: Server;
let port: number;
const received: { body: string; partitionKey?: string; id?: string }[] = [];
let busyOnce = 0;
let tokensPut = 0;
let settling = Promise.resolve();
const sockets = new Set<Socket>();

function validToken(token: string, audience: string): boolean {
  const m = /^SharedAccessSignature sr=([^&]+)&sig=([^&]+)&se=(\d+)&skn=(.+)$/.exec(token);
  if (!m || decodeURIComponent(m[1]) !== audience || Number(m[3]) * 1000 < Date.now()) return false;
  const sig = createHmac('sha256', KEY).update(`${m[1]}\n${m[3]}`).digest('base64');
  return decodeURIComponent(m[2]) === sig && m[4] === 'send';
}

beforeAll(async () => {
  const c = rhea.create_container({ id: 'fake-hub' });
  const authorized = new WeakSet<object>();
  c.on('receiver_open', (ctx: EventContext) => {
    const addr = ctx.receiver?.target?.address;
    if (addr !== '$cbs' && !authorized.has(ctx.connection)) {
      ctx.receiver?.close({ condition: 'amqp:unauthorized-access', description: `Unauthorized access to '${addr}'` });
    }
  });
  c.on('message', (ctx: EventContext) => {
    const m = ctx.message!;
    const addr = ctx.receiver?.target?.address;
    if (addr === '$cbs') {
      tokensPut++;
      const ok = validToken(String(m.body), String(m.application_properties?.name));
      if (ok) authorized.add(ctx.connection);
      const reply = ctx.connection.find_sender((s: { source?: { address?: string } }) => s.source?.address === '$cbs');
      reply?.send({
        correlation_id: m.message_id,
        to: m.reply_to,
        application_properties: {
          'status-code': ok ? 200 : 401,
          'status-description': ok ? 'OK' : 'InvalidSignature: the token has an invalid signature.',
        },
      } as unknown as Message);
      return;
    }
    const body = Buffer.from(m.body.content ?? m.body).toString();
    const d = ctx.delivery!;
    let settle = () => d.accept();
    if (body.includes('poison'))
      settle = () => d.reject({ condition: 'amqp:invalid-field', description: 'The message is not valid.' });
    else if (busyOnce > 0) {
      busyOnce--;
      settle = () =>
        d.reject({
          condition: 'com.microsoft:server-busy',
          description: 'The request was terminated because the namespace is being throttled.',
        });
    } else
      received.push({ body, partitionKey: m.message_annotations?.['x-opt-partition-key'], id: String(m.message_id) });
    // One settlement per tick: rhea's write_dispositions merges a delivery into the range of the
    // one before it without comparing their outcomes when that range holds one delivery.
    settling = settling.then(
      () =>
        new Promise<void>((r) =>
          setImmediate(() => {
            settle();
            r();
          }),
        ),
    );
  });
  server = c.listen({ port: 0, host: '127.0.0.1', autoaccept: false } as Parameters<
    typeof c.listen
  >[0]) as unknown as Server;
  await new Promise((r) => server.once('listening', r));
  port = (server.address() as AddressInfo).port;
  server.on('connection', (sock: Socket) => sockets.add(sock));
});

afterAll(async () => {
  for (const sock of sockets) sock.destroy();
  await new Promise((r) => server.close(r));
});

const events = (n: number, payload: (i: number) => unknown = (i) => i): StoredEvent[] =>
  storedEvents(n, { topic: (seq) => `plant/line${seq % 2}/temp`, payload });
const batch = batchOf;

async function sink(key = KEY, extra: Record<string, unknown> = {}) {
  const cfg = eventHubsUplinkSchema.parse({
    name: 'eh',
    type: 'eventhubs',
    connectionString: `Endpoint=sb://127.0.0.1/;SharedAccessKeyName=send;SharedAccessKey=${key};EntityPath=telemetry`,
    port,
    transport: 'tcp',
    connectTimeout: '3s',
    ackTimeout: '3s',
    ...extra,
  });
  const s = new EventHubsSink(cfg, { gatewayId: 'gw-t', logger: silentLogger });
  await s.start();
  return s;
}

describe('eventhubs uplink against an Event Hubs-like AMQP 1.0 peer', () => {
  it('authenticates with a SAS token on $cbs and sends keyed by topic', async () => {
    received.length = 0;
    const s = await sink();
    const res = await s.send(batch(events(20)));
    expect(res.accepted).toHaveLength(20);
    expect(tokensPut).toBeGreaterThan(0);
    expect(received.map((r) => r.partitionKey)).toEqual(events(20).map((e) => e.topic));
    expect(received[0].id).toBe('gw-t:1');
    await s.stop();
  });

  it('rejects a poison message for good and retries a throttled one', async () => {
    received.length = 0;
    const s = await sink();
    busyOnce = 1;
    const res = await s.send(batch(events(5, (i) => (i === 3 ? 'poison' : i))));
    expect(res.rejected).toEqual([2]);
    expect(res.retry).toHaveLength(1);
    expect(res.accepted).toHaveLength(3);
    expect(res.error).toMatch(/amqp:invalid-field/);
    expect(res.error).toMatch(/com.microsoft:server-busy/);
    expect(res.retryAfterMs).toBe(4000);
    await s.stop();
  });

  it('renews the token before it expires, on the same connection', async () => {
    received.length = 0;
    const s = await sink(KEY, { tokenTtl: '2s' });
    expect((await s.send(batch(events(1)))).accepted).toEqual([0]);
    const before = tokensPut;
    await new Promise((r) => setTimeout(r, 1900)); // renewed at 80 % of 2 s
    expect(tokensPut).toBeGreaterThan(before);
    expect((await s.send(batch(events(2)))).accepted).toEqual([0, 1]);
    expect(s.health()).toEqual({ connected: true, lastError: undefined });
    await s.stop();
  });

  it('does the same over AMQP over WebSocket through a CONNECT proxy: SAS token on $cbs, then the events', async () => {
    const cert = selfSignedCert();
    const bridge = await startWsBridge({ targetPort: port, path: '/$servicebus/websocket', protocol: 'AMQPWSB10', tls: cert });
    const proxy = await startConnectProxy();
    try {
      received.length = 0;
      const before = tokensPut;
      const s = await sink(KEY, { transport: 'websocket', port: bridge.port, proxy: proxy.url, tls: { ca: cert.certPath } });
      const res = await s.send(batch(events(20)));
      await s.stop();
      expect(res.accepted).toHaveLength(20);
      expect(tokensPut).toBeGreaterThan(before);
      expect(received.map((r) => r.id)).toEqual(events(20).map((e) => `gw-t:${e.seq}`));
      expect(proxy.tunnels).toEqual([`127.0.0.1:${bridge.port}`]);
      expect(bridge.upgrades).toEqual([{ path: '/$servicebus/websocket', protocol: 'AMQPWSB10' }]);
    } finally {
      await proxy.close();
      await bridge.close();
      cert.cleanup();
    }
  });

  it('says the token was refused when the key is wrong', async () => {
    const s = await sink('d3Jvbmc=');
    await expect(s.send(batch(events(1)))).rejects.toThrow(/refused the SAS token .*InvalidSignature/);
    expect(s.health().connected).toBe(false);
    await s.stop();
  });
});
