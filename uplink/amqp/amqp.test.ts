import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import { beforeAll, describe, expect, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../test/helpers/fault-proxy.js';
import { ensureRabbitMQ } from '../../test/helpers/peers.js';
import { memoryRunner } from '../../test/helpers/uplink/memory-runner.js';
import { AmqpSink } from './index.js';
import { amqpUplinkSchema } from './schema.js';
import { until } from '../../test/helpers/until.js';
import { cleanupsAfterEach } from '../../test/helpers/cleanups.js';

interface Doc {
  batchId: string;
  events: { seq: number }[];
}

let rabbit: { url: string };
beforeAll(async () => {
  rabbit = await ensureRabbitMQ();
}, 90_000);

const cleanups = cleanupsAfterEach();

/**
 * The cloud side: a private auto-delete exchange and an exclusive queue bound to `binding`, consumed
 * directly (not through any proxy). Both vanish when the consumer disconnects.
 */
async function consumer(binding: string) {
  const exchange = `sluice-test-${randomUUID()}`;
  const conn = await amqp.connect(rabbit.url);
  const ch = await conn.createChannel();
  await ch.assertExchange(exchange, 'topic', { durable: false, autoDelete: true });
  const q = await ch.assertQueue('', { exclusive: true });
  await ch.bindQueue(q.queue, exchange, binding);
  const docs: Doc[] = [];
  const ids: string[] = [];
  await ch.consume(q.queue, (m) => {
    if (!m) return;
    docs.push(JSON.parse(m.content.toString()));
    ids.push(String(m.properties.messageId));
    ch.ack(m);
  });
  cleanups.push(() => conn.close().catch(() => {}));
  return { exchange, docs, ids };
}

function setup(url: string, exchange: string, extra: Record<string, unknown> = {}) {
  const config = amqpUplinkSchema.parse({
    name: 'rabbit',
    type: 'amqp',
    url,
    exchange,
    batch: { maxEvents: 100, maxDelay: 5 },
    retry: { initialDelay: 50, maxDelay: 300 },
    reconnect: { minDelay: 50, maxDelay: 200 },
    ackTimeout: '3s',
    ...extra,
  });
  const run = memoryRunner(config, (ctx) => new AmqpSink(config, ctx));
  cleanups.push(run.stop);
  return run;
}

const seqsOf = (docs: Doc[]) => docs.flatMap((d) => d.events.map((e) => e.seq));
const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

describe('amqp uplink (real RabbitMQ)', () => {
  it('publishes contract batches with confirms, in order, routed by key, messageId = batchId', async () => {
    const c = await consumer('sluice.gw-01.events');
    const { log, reader, runner } = setup(rabbit.url, c.exchange);
    log.appendN(1000);
    runner.start();
    await until(() => reader.committed === 1000 && seqsOf(c.docs).length >= 1000);
    expect(seqsOf(c.docs)).toEqual(range(1000));
    expect(c.ids).toEqual(c.docs.map((d) => d.batchId));
    expect(runner.status()).toMatchObject({ connected: true, deliveredEvents: 1000, pendingEvents: 0 });
  });

  it('retries a batch no queue takes, saying so, and delivers once one is bound', async () => {
    const c = await consumer('other.key');
    const { log, reader, runner } = setup(rabbit.url, c.exchange);
    log.appendN(5);
    runner.start();
    await until(() => runner.status().retried > 0);
    expect(runner.status().lastError).toContain(
      `no queue is bound to exchange "${c.exchange}" with routing key "sluice.gw-01.events"`,
    );
    expect(reader.committed).toBe(0);
    const conn = await amqp.connect(rabbit.url);
    cleanups.push(() => conn.close().catch(() => {}));
    const ch = await conn.createChannel();
    const q = await ch.assertQueue('', { exclusive: true });
    await ch.bindQueue(q.queue, c.exchange, 'sluice.#');
    await until(() => reader.committed === 5);
    const m = await ch.get(q.queue, { noAck: true });
    expect(m && JSON.parse(m.content.toString()).batchId).toBe('1-5');
  });

  it('refuses wrong credentials with a clear error and no password in it', async () => {
    const c = await consumer('sluice.#');
    const { log, runner } = setup('amqp://guest:wrong-password@127.0.0.1:5672', c.exchange, { ackTimeout: '500ms' });
    log.appendN(2);
    runner.start();
    await until(() => runner.status().retried > 0);
    const err = runner.status().lastError ?? '';
    expect(err).toContain('the server refused the credentials');
    expect(err).not.toContain('wrong-password');
    expect(runner.status().pendingEvents).toBe(2);
  });

  it('a link that stops answering: the confirm timeout drops the connection and nothing is lost', async () => {
    const c = await consumer('sluice.gw-01.events');
    const proxy: FaultProxy = await startFaultProxy({ targetPort: 5672 });
    cleanups.push(() => proxy.close());
    const { log, reader, runner } = setup(`amqp://guest:guest@127.0.0.1:${proxy.port}`, c.exchange, {
      ackTimeout: '700ms',
    });
    runner.start();
    log.appendN(100);
    await until(() => reader.committed === 100);
    proxy.blackhole(true);
    log.appendN(100);
    await until(() => (runner.status().lastError ?? '').includes('no publisher confirm'));
    expect(reader.committed).toBe(100);
    proxy.blackhole(false);
    await until(() => reader.committed === 200);
    await until(() => new Set(seqsOf(c.docs)).size === 200);
  });
});
