import { connect, type NatsConnection } from 'nats';
import { describe, expect, it } from 'vitest';
import { startFaultProxy } from '../../test/helpers/fault-proxy.js';
import { type Peer, startNats } from '../../test/helpers/peers.js';
import { batchIdOf } from '../sink.js';
import { memoryRunner } from '../../test/helpers/uplink/memory-runner.js';
import { NatsSink } from './index.js';
import { natsUplinkSchema } from './schema.js';
import { until } from '../../test/helpers/until.js';
import { cleanupsAfterEach } from '../../test/helpers/cleanups.js';

const cleanups = cleanupsAfterEach();

function config(peer: Peer, extra: Record<string, unknown> = {}) {
  return natsUplinkSchema.parse({
    name: 'js',
    type: 'nats',
    servers: [peer.url],
    subject: 'sluice.events',
    stream: { name: 'SLUICE', create: true },
    batch: { maxEvents: 100, maxDelay: 5 },
    retry: { initialDelay: 50, maxDelay: 300 },
    reconnect: { minDelay: 50, maxDelay: 200 },
    ackTimeout: '2s',
    ...extra,
  });
}

function setup(peer: Peer, extra: Record<string, unknown> = {}) {
  const c = config(peer, extra);
  const run = memoryRunner(c, (ctx) => new NatsSink(c, ctx));
  cleanups.push(run.stop);
  return run;
}

/** Every batch document in the stream, in stream order. */
async function streamDocs(nc: NatsConnection): Promise<{ batchId: string; events: { seq: number }[] }[]> {
  const jsm = await nc.jetstreamManager();
  const info = await jsm.streams.info('SLUICE');
  const docs = [];
  for (let s = info.state.first_seq; s <= info.state.last_seq && info.state.messages > 0; s++) {
    const m = await jsm.streams.getMessage('SLUICE', { seq: s });
    docs.push(JSON.parse(new TextDecoder().decode(m.data)));
  }
  return docs;
}

async function client(peer: Peer): Promise<NatsConnection> {
  const nc = await connect({ servers: peer.url, reconnectTimeWait: 50, maxReconnectAttempts: -1 });
  cleanups.push(() => nc.close());
  return nc;
}

describe('nats uplink (real NATS JetStream)', () => {
  it('publishes contract batches to JetStream in order, with Nats-Msg-Id = batchId', async () => {
    const peer = await startNats();
    cleanups.push(() => peer.stop());
    const { log, reader, runner } = setup(peer);
    log.appendN(1000);
    runner.start();
    await until(() => reader.committed === 1000);
    const nc = await client(peer);
    const docs = await streamDocs(nc);
    expect(docs.flatMap((d) => d.events.map((e) => e.seq))).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    expect(docs.every((d) => d.batchId === batchIdOf(d.events as never))).toBe(true);
    const m = await (await nc.jetstreamManager()).streams.getMessage('SLUICE', { seq: 1 });
    expect(m.header.get('Nats-Msg-Id')).toBe(docs[0].batchId);
    expect(runner.status()).toMatchObject({ connected: true, deliveredEvents: 1000 });
  });

  it('a resent batch is deduplicated by the stream', async () => {
    const peer = await startNats();
    cleanups.push(() => peer.stop());
    const { log, sink } = setup(peer);
    await sink.start();
    log.appendN(3);
    const batch = { gateway: 'gw-01', batchId: '1-3', events: log.events };
    expect((await sink.send(batch)).accepted).toEqual([0, 1, 2]);
    expect((await sink.send(batch)).accepted).toEqual([0, 1, 2]);
    const nc = await client(peer);
    const info = await (await nc.jetstreamManager()).streams.info('SLUICE');
    expect(info.state.messages).toBe(1);
    await sink.stop();
  });

  it('says which subject no stream captures', async () => {
    const peer = await startNats();
    cleanups.push(() => peer.stop());
    const { log, runner } = setup(peer, { stream: undefined, subject: 'nowhere.events' });
    log.appendN(2);
    runner.start();
    await until(() => runner.status().retried > 0);
    expect(runner.status().lastError).toContain('no JetStream stream captures subject "nowhere.events"');
    expect(runner.status().pendingEvents).toBe(2);
  });

  it('starts while the server is down, says so, and delivers once it is up', async () => {
    const peer = await startNats();
    cleanups.push(() => peer.stop());
    await peer.kill('SIGKILL');
    const { log, reader, runner } = setup(peer, { ackTimeout: '300ms' });
    log.appendN(20);
    runner.start();
    await until(() => runner.status().retried > 0);
    expect(runner.status().connected).toBe(false);
    expect(runner.status().lastError).toContain('connection refused');
    await peer.start();
    await until(() => reader.committed === 20);
    expect(runner.status().connected).toBe(true);
  });

  it('a link that stops answering: publishes time out and are retried; nothing is lost', async () => {
    const peer = await startNats();
    cleanups.push(() => peer.stop());
    const proxy = await startFaultProxy({ targetPort: peer.port });
    cleanups.push(() => proxy.close());
    const { log, reader, runner } = setup(peer, { servers: [proxy.url('nats')], ackTimeout: '500ms' });
    runner.start();
    log.appendN(100);
    await until(() => reader.committed === 100);
    proxy.blackhole(true);
    log.appendN(100);
    await until(() => runner.status().retried > 0);
    expect(reader.committed).toBe(100);
    proxy.blackhole(false);
    await until(() => reader.committed === 200);
    const nc = await client(peer);
    const seqs = (await streamDocs(nc)).flatMap((d) => d.events.map((e) => e.seq));
    expect(new Set(seqs)).toEqual(new Set(Array.from({ length: 200 }, (_, i) => i + 1)));
  });
});
