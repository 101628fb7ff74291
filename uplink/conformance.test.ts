/** The Sink conformance suite (test/helpers/uplink/sink-conformance.ts) run against each sink of this folder with its real peer. */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:https';
import amqp from 'amqplib';
import mqtt from 'mqtt';
import { connect as natsConnect } from 'nats';
import { afterAll, beforeAll } from 'vitest';
import { silentLogger } from '../src/core/log.js';
import { type SelfSigned, selfSignedCert } from '../test/helpers/certs.js';
import { ensureRabbitMQ, startMosquitto, startNats } from '../test/helpers/peers.js';
import { AmqpSink } from './amqp/index.js';
import { amqpUplinkSchema } from './amqp/schema.js';
import { HttpSink } from './http/index.js';
import { httpUplinkSchema } from './http/schema.js';
import { MqttSink } from './mqtt/index.js';
import { mqttUplinkSchema } from './mqtt/schema.js';
import { NatsSink } from './nats/index.js';
import { natsUplinkSchema } from './nats/schema.js';
import { describeSinkConformance, type ReceivedBatch } from '../test/helpers/uplink/sink-conformance.js';

const ctx = { gatewayId: 'gw-conf', logger: silentLogger };
const parse = (b: Buffer | Uint8Array) => JSON.parse(Buffer.from(b).toString()) as ReceivedBatch;

describeSinkConformance('mqtt (Mosquitto)', {
  async startPeer() {
    const peer = await startMosquitto();
    const docs: ReceivedBatch[] = [];
    const sub = await mqtt.connectAsync(peer.url);
    sub.on('message', (_t, p) => docs.push(parse(p)));
    await sub.subscribeAsync('sluice/gw-conf/events', { qos: 1 });
    return {
      port: peer.port,
      received: async () => docs,
      stop: async () => {
        await sub.endAsync(true);
        await peer.stop();
      },
    };
  },
  config: (port, extra) => mqttUplinkSchema.parse({ name: 'conf', type: 'mqtt', url: `mqtt://127.0.0.1:${port}`, ackTimeout: '1s', ...extra }),
  sink: (config) => new MqttSink(config, ctx),
});

let tls: SelfSigned;
beforeAll(() => {
  tls = selfSignedCert();
});
afterAll(() => tls?.cleanup());

describeSinkConformance('http (local HTTPS server)', {
  async startPeer() {
    const docs: ReceivedBatch[] = [];
    const server = createServer(tls, (req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (d) => parts.push(d));
      req.on('end', () => {
        docs.push(parse(Buffer.concat(parts)));
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return {
      port: (server.address() as { port: number }).port,
      received: async () => docs,
      stop: async () => {
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
      },
    };
  },
  config: (port, extra) =>
    httpUplinkSchema.parse({
      name: 'conf',
      type: 'http',
      url: `https://127.0.0.1:${port}/batches`,
      tls: { ca: tls.certPath },
      timeout: '2s',
      ...extra,
    }),
  sink: (config) => new HttpSink(config, ctx),
});

describeSinkConformance('nats (JetStream)', {
  async startPeer() {
    const peer = await startNats();
    return {
      port: peer.port,
      async received() {
        const nc = await natsConnect({ servers: peer.url });
        try {
          const jsm = await nc.jetstreamManager();
          const info = await jsm.streams.info('CONF').catch(() => undefined);
          const docs: ReceivedBatch[] = [];
          if (!info || info.state.messages === 0) return docs;
          for (let s = info.state.first_seq; s <= info.state.last_seq; s++) {
            docs.push(parse((await jsm.streams.getMessage('CONF', { seq: s })).data));
          }
          return docs;
        } finally {
          await nc.close();
        }
      },
      stop: () => peer.stop(),
    };
  },
  config: (port, extra) =>
    natsUplinkSchema.parse({
      name: 'conf',
      type: 'nats',
      servers: [`nats://127.0.0.1:${port}`],
      subject: 'conf.events',
      stream: { name: 'CONF', create: true },
      ackTimeout: '1s',
      ...extra,
    }),
  sink: (config) => new NatsSink(config, ctx),
});

const exchange = `sluice-conf-${randomUUID()}`;
describeSinkConformance('amqp (RabbitMQ)', {
  async startPeer() {
    const rabbit = await ensureRabbitMQ();
    const conn = await amqp.connect(rabbit.url);
    const ch = await conn.createChannel();
    await ch.assertExchange(exchange, 'topic', { durable: false, autoDelete: true });
    const q = await ch.assertQueue('', { exclusive: true });
    await ch.bindQueue(q.queue, exchange, 'sluice.#');
    const docs: ReceivedBatch[] = [];
    await ch.consume(q.queue, (m) => {
      if (!m) return;
      docs.push(parse(m.content));
      ch.ack(m);
    });
    return { port: 5672, received: async () => docs, stop: () => conn.close().catch(() => {}) };
  },
  config: (port, extra) =>
    amqpUplinkSchema.parse({ name: 'conf', type: 'amqp', url: `amqp://guest:guest@127.0.0.1:${port}`, exchange, ackTimeout: '1s', ...extra }),
  sink: (config) => new AmqpSink(config, ctx),
});
