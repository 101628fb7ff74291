import { createHmac } from 'node:crypto';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { gunzipSync } from 'node:zlib';
import amqplib from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../src/core/event.js';
import { silentLogger } from '../../src/core/log.js';
import { ensureRabbitMQAmqp10 } from '../../test/helpers/peers.js';
import { EventHubsSink } from './index.js';
import { buildSasToken, sasTokenExpiry } from './sas.js';
import { type EventHubsUplinkConfig, eventHubsUplinkSchema, parseConnectionString } from './schema.js';
import { batchOf, storedEvents } from '../../test/helpers/uplink/stored-events.js';

let conn: amqplib.ChannelModel;
let ch: amqplib.Channel;
const queues: string[] = [];

beforeAll(async () => {
  const { url } = await ensureRabbitMQAmqp10();
  conn = await amqplib.connect(url);
  ch = await conn.createChannel();
}, 90_000);

afterAll(async () => {
  for (const q of queues) await ch.deleteQueue(q).catch(() => undefined);
  await conn?.close();
});

async function queue(args: Record<string, unknown> = {}): Promise<string> {
  const q = `sluice-eh-${process.pid}-${queues.length}-${Date.now() % 100000}`;
  await ch.assertQueue(q, { durable: false, arguments: args });
  queues.push(q);
  return q;
}

/** Reads at least `expected` messages, then whatever else arrives until the queue stays empty for a moment. */
async function drain(q: string, expected: number, timeoutMs = 5000): Promise<amqplib.GetMessage[]> {
  const out: amqplib.GetMessage[] = [];
  const deadline = Date.now() + timeoutMs;
  let idle = 0;
  while (Date.now() < deadline && (out.length < expected || idle < 5)) {
    const m = await ch.get(q, { noAck: true });
    if (m) {
      out.push(m);
      idle = 0;
    } else {
      idle++;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  return out;
}

const events = (n: number, from = 1, payload: (i: number) => unknown = (i) => ({ value: i })): StoredEvent[] =>
  storedEvents(n, { from, ts: (seq) => 1732400000000 + seq, payload });

const batch = batchOf;

function config(extra: Record<string, unknown>): EventHubsUplinkConfig {
  return eventHubsUplinkSchema.parse({
    name: 'eh',
    type: 'eventhubs',
    host: '127.0.0.1',
    port: 5672,
    transport: 'tcp',
    auth: 'plain',
    keyName: 'guest',
    key: 'guest',
    connectTimeout: '3s',
    ackTimeout: '3s',
    ...extra,
  });
}

const sinks: EventHubsSink[] = [];
async function started(cfg: EventHubsUplinkConfig): Promise<EventHubsSink> {
  const sink = new EventHubsSink(cfg, { gatewayId: 'gw-t', logger: silentLogger });
  sinks.push(sink);
  await sink.start();
  return sink;
}
afterAll(async () => {
  for (const s of sinks) await s.stop();
});

/** A TCP proxy in front of RabbitMQ that can cut every connection, or swallow traffic (blackhole). */
async function proxy(
  targetPort: number,
): Promise<{ port: number; cutAfter(bytes: number): void; blackhole(on: boolean): void; close(): Promise<void> }> {
  let cutAt = Number.POSITIVE_INFINITY;
  let hole = false;
  const sockets = new Set<Socket>();
  const srv: Server = createServer((client) => {
    const up = createConnection(targetPort, '127.0.0.1');
    sockets.add(client).add(up);
    let seen = 0;
    client.on('data', (d) => {
      seen += d.length;
      if (seen > cutAt) {
        client.resetAndDestroy();
        up.destroy();
        return;
      }
      if (!hole) up.write(d);
    });
    up.on('data', (d) => {
      if (!hole) client.write(d);
    });
    const end = () => {
      client.destroy();
      up.destroy();
    };
    client.on('error', end).on('close', end);
    up.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as { port: number }).port,
    cutAfter: (b) => {
      cutAt = b;
    },
    blackhole: (on) => {
      hole = on;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => srv.close(r));
    },
  };
}

describe('eventhubs uplink against RabbitMQ AMQP 1.0', () => {
  it('sends one message per event, settled accepted, in order, with id and partition key', async () => {
    const q = await queue();
    const sink = await started(config({ address: q }));
    const evs = events(300);
    const res = await sink.send(batch(evs));
    expect(res.accepted).toHaveLength(300);
    expect(res.rejected).toEqual([]);
    expect(res.retry).toEqual([]);
    const got = await drain(q, 300);
    expect(got.map((m) => m.content.toString())).toEqual(evs.map((e) => e.json));
    expect(got[0].properties.messageId).toBe('gw-t:1');
    expect(got[0].properties.contentType).toBe('application/json');
    expect(sink.health()).toEqual({ connected: true, lastError: undefined });
  });

  it('with aggregate and gzip sends one contract batch per message', async () => {
    const q = await queue();
    const sink = await started(config({ address: q, aggregate: true, gzip: true }));
    const evs = events(500, 1001);
    expect((await sink.send(batch(evs))).accepted).toHaveLength(500);
    const [m] = await drain(q, 1);
    expect(m.properties.messageId).toBe('1001-1500');
    const doc = JSON.parse(gunzipSync(m.content).toString());
    expect(doc).toMatchObject({ gateway: 'gw-t', batchId: '1001-1500' });
    expect(doc.events).toHaveLength(500);
  });

  it('rejects an event above maxMessageBytes and delivers the rest', async () => {
    const q = await queue();
    const sink = await started(config({ address: q, maxMessageBytes: '4KiB' }));
    const evs = events(4, 1, (i) => (i === 2 ? 'x'.repeat(8000) : i));
    const res = await sink.send(batch(evs));
    expect(res.rejected).toEqual([1]);
    expect(res.accepted.sort()).toEqual([0, 2, 3]);
    expect(res.error).toMatch(/exceed maxMessageBytes/);
    expect((await drain(q, 3)).map((m) => JSON.parse(m.content.toString()).seq)).toEqual([1, 3, 4]);
  });

  it('keeps what was accepted and retries the rest when the peer drops the connection instead of settling', async () => {
    // A queue that refuses what exceeds 3 messages: RabbitMQ 3.x's 1.0 plugin answers that nack by
    // closing the connection, not with a `rejected` outcome (eventhubs-peer.test.ts covers those).
    const q = await queue({ 'x-max-length': 3, 'x-overflow': 'reject-publish' });
    const sink = await started(config({ address: `/amq/queue/${q}`, ackTimeout: '1s' }));
    const res = await sink.send(batch(events(5)));
    expect(res.accepted).toEqual([0, 1, 2]);
    expect(res.rejected).toEqual([]);
    expect(res.retry).toEqual([3, 4]);
    expect(res.error).toMatch(/2 message\(s\): (cannot reach|lost the connection|the peer closed|no settlement)/);
    expect(sink.health()).toMatchObject({ connected: false, lastError: expect.stringMatching(/Event Hubs/) });
  });

  it('says when the credentials are refused', async () => {
    // RabbitMQ answers a failed SASL PLAIN only after about 3 s.
    const sink = await started(config({ address: 'x', key: 'wrong-password', connectTimeout: '8s' }));
    await expect(sink.send(batch(events(1)))).rejects.toThrow(/refused the credentials \(amqp:unauthorized-access/);
    expect(sink.health().connected).toBe(false);
    expect(sink.health().lastError).toBeTruthy();
  });

  it('says when the target does not exist', async () => {
    const sink = await started(config({ address: '/exchange/no-such-hub/rk' }));
    await expect(sink.send(batch(events(1)))).rejects.toThrow(/no-such-hub/);
    expect(sink.health().lastError).toMatch(/no-such-hub/);
  });

  it('gives up on a peer that accepts TCP and never speaks AMQP, within connectTimeout', async () => {
    const sockets: Socket[] = [];
    const hole = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => hole.listen(0, '127.0.0.1', r));
    const sink = await started(
      config({ address: 'x', port: (hole.address() as { port: number }).port, connectTimeout: '500ms' }),
    );
    const t0 = Date.now();
    await expect(sink.send(batch(events(1)))).rejects.toThrow(/no answer within 500 ms/);
    expect(Date.now() - t0).toBeLessThan(3000);
    for (const s of sockets) s.destroy();
    await new Promise((r) => hole.close(r));
  });

  it('a reset mid-batch retries the unsettled rest, and a blackholed link times out; nothing is lost', async () => {
    const q = await queue();
    const p = await proxy(5672);
    const sink = await started(config({ address: q, port: p.port, ackTimeout: '1s' }));
    const evs = events(2000, 1, (i) => ({ value: i, pad: 'p'.repeat(200) }));
    await new Promise((r) => setTimeout(r, 300)); // let start() connect
    p.cutAfter(200_000); // about a third of the batch gets through
    const first = await sink.send(batch(evs)).catch((err: Error) => ({ thrown: err.message }));
    const delivered = new Set<number>();
    let rest = evs;
    if ('accepted' in first) {
      expect(first.accepted.length).toBeGreaterThan(0);
      expect(first.retry.length).toBeGreaterThan(0);
      expect(first.accepted.length + first.retry.length).toBe(2000);
      expect(first.error).toMatch(/lost the connection|closed/);
      for (const i of first.accepted) delivered.add(evs[i].seq);
      rest = first.retry.map((i) => evs[i]);
    }
    expect(sink.health().connected).toBe(false);
    // blackhole: connected, then silence: the batch comes back as retry after ackTimeout
    p.cutAfter(Number.POSITIVE_INFINITY);
    await expect(sink.send(batch(rest.slice(0, 10)))).resolves.toMatchObject({ accepted: expect.any(Array) });
    p.blackhole(true);
    await expect(sink.send(batch(rest.slice(10)))).rejects.toThrow(/ackTimeout/);
    p.blackhole(false);
    const again = await sink.send(batch(rest.slice(10)));
    expect(again.accepted).toHaveLength(rest.length - 10);
    const got = await drain(q, evs.length);
    for (const m of got) delivered.add(JSON.parse(m.content.toString()).seq);
    expect(delivered.size).toBe(2000); // at least once: duplicates allowed, gaps not
    await sink.stop();
    await p.close();
  });
});

describe('SAS tokens and connection strings', () => {
  it('builds a token Azure accepts: HMAC-SHA256 over the encoded URI and expiry', () => {
    const t = buildSasToken('sb://ns.servicebus.windows.net/hub', 'send', 'a2V5', 1732400000);
    const sr = encodeURIComponent('sb://ns.servicebus.windows.net/hub');
    const sig = createHmac('sha256', 'a2V5').update(`${sr}\n1732400000`).digest('base64');
    expect(t).toBe(`SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=1732400000&skn=send`);
    expect(sasTokenExpiry(t)).toBe(1732400000);
  });

  it('parses a portal connection string, keys containing "="', () => {
    expect(
      parseConnectionString(
        'Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=abc/def+g==;EntityPath=hub',
      ),
    ).toEqual({
      host: 'ns.servicebus.windows.net',
      eventHub: 'hub',
      keyName: 'send',
      key: 'abc/def+g==',
      sasToken: undefined,
    });
    const bad = eventHubsUplinkSchema.safeParse({
      name: 'e',
      type: 'eventhubs',
      connectionString: 'Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send',
    });
    expect(bad.success).toBe(false);
    expect(
      eventHubsUplinkSchema.parse({
        name: 'e',
        type: 'eventhubs',
        connectionString:
          'Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=s;SharedAccessKey=k;EntityPath=h',
      }).auth,
    ).toBe('sas-token');
  });
});
