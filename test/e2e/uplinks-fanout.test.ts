/**
 * Fan-out (the MQTT, HTTP, NATS and AMQP uplinks): one gateway fans the same 10k
 * events out to every real peer; one peer (NATS) is down in the middle, the others are unaffected,
 * and the stopped one catches up with no loss.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:https';
import amqp from 'amqplib';
import mqtt from 'mqtt';
import { connect as natsConnect } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCert } from '../helpers/certs.js';
import { startTestGateway, type TestGateway, waitFor } from '../helpers/gateway.js';
import { ensureRabbitMQ, type Peer, startMosquitto, startNats } from '../helpers/peers.js';

const N = 10_000;
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {});
});

type Seen = Set<number>;
const seqsOf = (doc: Buffer | Uint8Array): number[] =>
  (JSON.parse(Buffer.from(doc).toString()) as { events: { seq: number }[] }).events.map((e) => e.seq);

let gw: TestGateway;
let nats: Peer;
const seen: Record<'mqtt' | 'http' | 'nats' | 'amqp', Seen> = {
  mqtt: new Set(),
  http: new Set(),
  nats: new Set(),
  amqp: new Set(),
};

beforeAll(async () => {
  const mosquitto = await startMosquitto();
  cleanups.push(() => mosquitto.stop());
  nats = await startNats();
  cleanups.push(() => nats.stop());
  const rabbit = await ensureRabbitMQ();

  // Cloud side of each peer, recording the seqs it receives.
  const sub = await mqtt.connectAsync(mosquitto.url);
  cleanups.push(() => sub.endAsync(true));
  sub.on('message', (_t, p) => seqsOf(p).forEach((s) => seen.mqtt.add(s)));
  await sub.subscribeAsync('sluice/gw-fan/events', { qos: 1 });

  const tls = selfSignedCert();
  cleanups.push(() => tls.cleanup());
  const https = createServer(tls, (req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d) => parts.push(d));
    req.on('end', () => {
      seqsOf(Buffer.concat(parts)).forEach((s) => seen.http.add(s));
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => https.close(r)));
  cleanups.push(() => https.closeAllConnections());
  const httpsPort = (https.address() as { port: number }).port;

  const exchange = `sluice-fan-${randomUUID()}`;
  const conn = await amqp.connect(rabbit.url);
  cleanups.push(() => conn.close());
  const ch = await conn.createChannel();
  await ch.assertExchange(exchange, 'topic', { durable: false, autoDelete: true });
  const q = await ch.assertQueue('', { exclusive: true });
  await ch.bindQueue(q.queue, exchange, 'sluice.#');
  await ch.consume(q.queue, (m) => {
    if (!m) return;
    seqsOf(m.content).forEach((s) => seen.amqp.add(s));
    ch.ack(m);
  });

  const common = {
    batch: { maxEvents: 500, maxDelay: '20ms' },
    retry: { initialDelay: '50ms', maxDelay: '500ms' },
    reconnect: { minDelay: '100ms', maxDelay: '500ms' },
  };
  gw = await startTestGateway({
    gateway: { id: 'gw-fan' },
    uplinks: [
      { name: 'cloud', type: 'mqtt', url: mosquitto.url, ...common },
      { name: 'ingest', type: 'http', url: `https://127.0.0.1:${httpsPort}/batches`, tls: { ca: tls.certPath }, ...common },
      { name: 'js', type: 'nats', servers: [nats.url], subject: 'sluice.events', stream: { name: 'SLUICE', create: true }, ackTimeout: '2s', ...common },
      { name: 'rabbit', type: 'amqp', url: rabbit.url, exchange, ...common },
    ],
  });
  cleanups.push(() => gw.cleanup());
  cleanups.push(() => gw.stop());
}, 90_000);

async function ingest(from: number, count: number): Promise<void> {
  for (let i = from; i < from + count; i += 500) {
    await gw.gateway.ingest(
      Array.from({ length: 500 }, (_, k) => ({ source: 'test', topic: `sensors/s${(i + k) % 10}/temp`, payload: { n: i + k } })),
    );
  }
}

function uplink(name: string) {
  return (gw.gateway.status() as { uplinks: { name: string; connected: boolean; pendingEvents: number; lastError: string | null }[] }).uplinks.find(
    (u) => u.name === name,
  )!;
}

async function natsStreamSeqs(): Promise<Seen> {
  const nc = await natsConnect({ servers: nats.url });
  try {
    const jsm = await nc.jetstreamManager();
    const info = await jsm.streams.info('SLUICE');
    const out: Seen = new Set();
    for (let s = info.state.first_seq; s <= info.state.last_seq; s++) {
      const m = await jsm.streams.getMessage('SLUICE', { seq: s });
      seqsOf(m.data).forEach((x) => out.add(x));
    }
    return out;
  } finally {
    await nc.close();
  }
}

describe('fan-out to every uplink (real Mosquitto, HTTPS, NATS JetStream, RabbitMQ)', () => {
  it('delivers the same events to each peer; a stopped peer does not hold the others back and catches up', async () => {
    await ingest(0, N / 2);
    await waitFor(() => seen.mqtt.size === N / 2 && seen.http.size === N / 2 && seen.amqp.size === N / 2, 30_000, 'first half at mqtt, http, amqp');
    await waitFor(() => uplink('js').pendingEvents === 0, 30_000, 'first half at nats');

    await nats.kill('SIGKILL');
    await waitFor(() => !uplink('js').connected, 10_000, 'nats uplink to notice the outage');
    await ingest(N / 2, N / 2);
    // The others get the second half while NATS is down.
    await waitFor(() => seen.mqtt.size === N && seen.http.size === N && seen.amqp.size === N, 30_000, 'second half at mqtt, http, amqp');
    expect(uplink('js').pendingEvents).toBeGreaterThan(0);
    expect(uplink('js').lastError).toBeTruthy();

    await nats.start();
    await waitFor(() => uplink('js').pendingEvents === 0, 30_000, 'nats uplink to catch up');
    seen.nats = await natsStreamSeqs();
    const all = Array.from({ length: N }, (_, i) => i + 1);
    for (const peer of ['mqtt', 'http', 'nats', 'amqp'] as const) {
      const got = [...seen[peer]].sort((a, b) => a - b);
      // every seq, each peer (seqs start at 1 in a fresh data dir)
      expect(got, peer).toEqual(all);
    }
  }, 120_000);
});
