/**
 * No Kafka broker can run on these machines: the delivery test runs only when KAFKA_BROKERS
 * (`host:port,...`) points at one, and is skipped otherwise. What runs everywhere: the schema and
 * the error a gateway shows when no broker answers.
 */
import { createServer, type Socket } from 'node:net';
import { Kafka, logLevel } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../src/core/event.js';
import { silentLogger } from '../../src/core/log.js';
import { freePort } from '../../test/helpers/peers.js';
import { KafkaSink } from './index.js';
import { type KafkaUplinkConfig, kafkaUplinkSchema } from './schema.js';
import { batchOf, storedEvents } from '../../test/helpers/uplink/stored-events.js';

const brokers = process.env.KAFKA_BROKERS?.split(',').filter(Boolean) ?? [];

const events = (n: number, payload: (i: number) => unknown = (i) => i): StoredEvent[] => storedEvents(n, { payload });
const batch = batchOf;
const config = (extra: Record<string, unknown>): KafkaUplinkConfig =>
  kafkaUplinkSchema.parse({
    name: 'k',
    type: 'kafka',
    topic: 'sluice-events',
    connectTimeout: '1s',
    requestTimeout: '3s',
    ...extra,
  });

describe('kafka uplink (no broker)', () => {
  it('validates brokers and topic names', () => {
    expect(
      kafkaUplinkSchema.safeParse({ name: 'k', type: 'kafka', brokers: ['kafka:9092'], topic: 'a.b-c_d' }).success,
    ).toBe(true);
    expect(kafkaUplinkSchema.safeParse({ name: 'k', type: 'kafka', brokers: ['kafka'], topic: 'a' }).success).toBe(
      false,
    );
    expect(
      kafkaUplinkSchema.safeParse({ name: 'k', type: 'kafka', brokers: ['kafka:9092'], topic: 'bad topic' }).success,
    ).toBe(false);
  });

  it('says it cannot reach the brokers when nothing listens, and rejects an oversized event without a broker', async () => {
    const sink = new KafkaSink(config({ brokers: [`127.0.0.1:${await freePort()}`], maxMessageBytes: 1000 }), {
      gatewayId: 'gw-t',
      logger: silentLogger,
    });
    await sink.start();
    await expect(sink.send(batch(events(2)))).rejects.toThrow(/cannot reach the Kafka brokers/);
    expect(sink.health()).toMatchObject({ connected: false, lastError: expect.stringMatching(/cannot reach/) });
    const onlyHuge = await sink.send(batch(events(1, () => 'x'.repeat(2000))));
    expect(onlyHuge).toMatchObject({ accepted: [], rejected: [0], retry: [] });
    await sink.stop();
  });

  it('gives up on a broker that accepts TCP and never answers', async () => {
    const sockets: Socket[] = [];
    const hole = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => hole.listen(0, '127.0.0.1', r));
    const sink = new KafkaSink(
      config({ brokers: [`127.0.0.1:${(hole.address() as { port: number }).port}`], requestTimeout: '1s' }),
      { gatewayId: 'gw-t', logger: silentLogger },
    );
    await sink.start();
    await expect(sink.send(batch(events(1)))).rejects.toThrow(/Kafka/);
    await sink.stop();
    for (const s of sockets) s.destroy();
    await new Promise((r) => hole.close(r));
  }, 20_000);
});

describe.skipIf(brokers.length === 0)('kafka uplink against KAFKA_BROKERS', () => {
  it('produces one record per event keyed by topic, read back by a consumer', async () => {
    const topic = `sluice-test-${Date.now()}`;
    const kafka = new Kafka({ clientId: 'sluice-test', brokers, logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    const sink = new KafkaSink(config({ brokers, topic, gzip: true, connectTimeout: '10s', requestTimeout: '30s' }), {
      gatewayId: 'gw-t',
      logger: silentLogger,
    });
    await sink.start();
    const evs = events(200);
    expect((await sink.send(batch(evs))).accepted).toHaveLength(200);
    const consumer = kafka.consumer({ groupId: `${topic}-reader` });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const got: { key: string; value: string }[] = [];
    await new Promise<void>((resolve) => {
      void consumer.run({
        eachMessage: async ({ message }) => {
          got.push({ key: String(message.key), value: String(message.value) });
          if (got.length === evs.length) resolve();
        },
      });
    });
    expect(got.map((g) => g.value)).toEqual(evs.map((e) => e.json));
    expect(got.map((g) => g.key)).toEqual(evs.map((e) => e.topic));
    await consumer.disconnect();
    await sink.stop();
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  }, 60_000);
});
