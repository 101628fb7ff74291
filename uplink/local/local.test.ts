import { afterEach, describe, expect, it } from 'vitest';
import { openRingLog } from '../../buffer/index.js';
import type { RingLog } from '../../buffer/types.js';
import { bufferSchema } from '../../src/config/schema.js';
import { silentLogger } from '../../src/core/log.js';
import { HttpServer } from '../../src/core/http-server.js';
import { tempDir } from '../../test/helpers/peers.js';
import { type LocalConsumers, registerLocalConsumers } from './index.js';
import type { LocalConsumersConfig } from './schema.js';

interface Env {
  log: RingLog;
  http: HttpServer;
  consumers: LocalConsumers;
  base: string;
  dir: { path: string; cleanup(): void };
}

const envs: Env[] = [];

async function setup(
  config: Partial<Record<keyof LocalConsumersConfig, unknown>> = {},
  dir = tempDir('sluice-local-'),
): Promise<Env> {
  const log = await openRingLog({
    dir: dir.path,
    gatewayId: 'gw-t',
    config: bufferSchema.parse({ commitInterval: 1 }),
    logger: silentLogger,
  });
  const http = new HttpServer(silentLogger);
  const consumers = registerLocalConsumers(http, log, { config: config as never, logger: silentLogger });
  await http.listen('127.0.0.1', 0);
  const env = { log, http, consumers, base: `http://127.0.0.1:${http.address!.port}`, dir };
  envs.push(env);
  return env;
}

async function teardown(env: Env, keepDir = false): Promise<void> {
  envs.splice(envs.indexOf(env), 1);
  env.consumers.close();
  await env.http.close();
  await env.log.close();
  if (!keepDir) env.dir.cleanup();
}

afterEach(async () => {
  for (const e of [...envs]) await teardown(e);
});

async function append(log: RingLog, n: number, topic = 'sensors/a/temp'): Promise<void> {
  await log.append(Array.from({ length: n }, (_, i) => ({ source: 'test', topic, payload: { i } })));
}

interface Doc {
  consumer: string;
  batchId: string | null;
  events: { seq: number; payload: unknown }[];
}

async function poll(env: Env, query: string): Promise<Doc> {
  const r = await fetch(`${env.base}/api/events?${query}`);
  expect(r.status).toBe(200);
  return (await r.json()) as Doc;
}

async function ack(env: Env, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await fetch(`${env.base}/api/events/ack`, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
  });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
}

const seqs = (d: Doc) => d.events.map((e) => e.seq);
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

describe('local consumers', () => {
  it('long-polls batches from the cursor and moves on only after an ack, across a restart', async () => {
    const dir = tempDir('sluice-local-');
    let env = await setup({}, dir);
    await append(env.log, 1000);
    const a = await poll(env, 'consumer=hist&max=300');
    expect(a.batchId).toBe('1-300');
    expect(seqs(a)).toEqual(range(1, 300));
    expect((await ack(env, { consumer: 'hist', batchId: a.batchId })).json).toMatchObject({ acked: 300 });
    const b = await poll(env, 'consumer=hist&max=300');
    expect(b.batchId).toBe('301-600');
    // b is never acknowledged: after a restart it comes again
    await teardown(env, true);
    env = await setup({}, dir);
    const again = await poll(env, 'consumer=hist&max=300');
    expect(again.batchId).toBe('301-600');
    expect(env.consumers.status().consumers[0]).toMatchObject({
      name: 'hist',
      inFlightBatches: 1,
      deliveredEvents: 300,
    });
  });

  it('shares the work between concurrent readers of one name, and keeps names apart', async () => {
    const env = await setup();
    await append(env.log, 1000);
    const docs = await Promise.all([1, 2, 3, 4].map(() => poll(env, 'consumer=grp&max=250')));
    const all = docs.flatMap(seqs).sort((x, y) => x - y);
    expect(all).toEqual(range(1, 1000)); // disjoint, and together everything
    for (const d of docs) expect((await ack(env, { consumer: 'grp', batchId: d.batchId })).json.acked).toBe(250);
    expect((await poll(env, 'consumer=grp')).batchId).toBeNull();
    // another name has its own cursor
    expect(seqs(await poll(env, 'consumer=other&max=10'))).toEqual(range(1, 10));
  });

  it('hands an unacknowledged batch out again after ackTimeout, with the same batch id', async () => {
    const env = await setup({ ackTimeout: '300ms' });
    await append(env.log, 20);
    const a = await poll(env, 'consumer=c&max=10');
    const b = await poll(env, 'consumer=c&max=10');
    expect([a.batchId, b.batchId]).toEqual(['1-10', '11-20']);
    expect((await ack(env, { consumer: 'c', batchId: '11-20' })).json.acked).toBe(10);
    await new Promise((r) => setTimeout(r, 400));
    const again = await poll(env, 'consumer=c&max=10');
    expect(again.batchId).toBe('1-10');
    // a late ack from the first reader still counts; a second one changes nothing
    expect((await ack(env, { consumer: 'c', batchId: '1-10' })).json).toMatchObject({ acked: 10 });
    expect((await ack(env, { consumer: 'c', batchId: '1-10' })).json).toMatchObject({ acked: 0, unknown: ['1-10'] });
    expect(env.consumers.status().consumers[0]).toMatchObject({
      redeliveredEvents: 10,
      ackedEvents: 20,
      pendingEvents: 0,
    });
  });

  it('long poll waits for new events, and returns an empty batch when none come', async () => {
    const env = await setup();
    const t0 = Date.now();
    const empty = await poll(env, 'consumer=w&wait=300ms');
    expect(empty).toEqual({ consumer: 'w', batchId: null, events: [] });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    const pending = poll(env, 'consumer=w&wait=10s');
    await new Promise((r) => setTimeout(r, 100));
    await append(env.log, 3);
    const d = await pending;
    expect(seqs(d)).toEqual([1, 2, 3]);
  });

  it('acks upTo a seq, splitting a batch it falls inside', async () => {
    const env = await setup();
    await append(env.log, 30);
    await poll(env, 'consumer=u&max=10');
    await poll(env, 'consumer=u&max=10');
    expect((await ack(env, { consumer: 'u', upTo: 15 })).json.acked).toBe(15);
    expect(env.consumers.status().consumers[0]).toMatchObject({ inFlightBatches: 1 });
    expect((await ack(env, { consumer: 'u', batchId: '16-20' })).json.acked).toBe(5);
    expect(seqs(await poll(env, 'consumer=u&max=100'))).toEqual(range(21, 30));
  });

  it('streams batches over SSE within a window; a closed stream hands its batches to the next reader', async () => {
    const env = await setup({ ackTimeout: '1m' });
    await append(env.log, 100);
    const ac = new AbortController();
    const r = await fetch(`${env.base}/api/events?consumer=s&max=10&window=2`, {
      headers: { accept: 'text/event-stream' },
      signal: ac.signal,
    });
    expect(r.headers.get('content-type')).toBe('text/event-stream');
    const reader = r.body!.getReader();
    const frames: Doc[] = [];
    let buf = '';
    const readFrames = async (n: number) => {
      while (frames.length < n) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += Buffer.from(value).toString();
        let i = buf.indexOf('\n\n');
        while (i >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = block
            .split('\n')
            .filter((l) => l.startsWith('data: '))
            .map((l) => l.slice(6));
          if (data.length) frames.push(JSON.parse(data.join('\n')));
          i = buf.indexOf('\n\n');
        }
      }
    };
    await readFrames(2);
    expect(frames.map((f) => f.batchId)).toEqual(['1-10', '11-20']);
    // the window is full: nothing more until an ack
    await new Promise((r) => setTimeout(r, 200));
    expect(env.consumers.status().consumers[0].inFlightBatches).toBe(2);
    await ack(env, { consumer: 's', batchId: '1-10' });
    await readFrames(3);
    expect(frames[2].batchId).toBe('21-30');
    ac.abort();
    await new Promise((r) => setTimeout(r, 100));
    // 11-20 and 21-30 were never acknowledged: the next reader gets them first
    expect((await poll(env, 'consumer=s&max=10')).batchId).toBe('11-20');
    expect((await poll(env, 'consumer=s&max=10')).batchId).toBe('21-30');
    expect((await poll(env, 'consumer=s&max=10')).batchId).toBe('31-40');
  });

  it('bounds consumers and in-flight batches, and refuses bad requests with one sentence', async () => {
    const env = await setup({ maxConsumers: 1, maxInFlight: 1 });
    await append(env.log, 10);
    expect((await poll(env, 'consumer=one&max=5')).batchId).toBe('1-5');
    // in flight is full: a poll waits, then comes back empty
    expect((await poll(env, 'consumer=one&max=5&wait=200ms')).batchId).toBeNull();
    const second = await fetch(`${env.base}/api/events?consumer=two`);
    expect(second.status).toBe(429);
    expect(((await second.json()) as { error: string }).error).toMatch(/too many consumer names/);
    expect((await fetch(`${env.base}/api/events`)).status).toBe(400);
    expect((await fetch(`${env.base}/api/events?consumer=bad%20name`)).status).toBe(400);
    expect((await fetch(`${env.base}/api/events?consumer=one&wait=soon`)).status).toBe(400);
    expect((await ack(env, { consumer: 'one', upTo: -1 })).status).toBe(400);
    expect((await ack(env, { consumer: 'one', batchId: 'x' })).status).toBe(400);
    const notJson = await fetch(`${env.base}/api/events/ack`, { method: 'POST', body: '{' });
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as { error: string }).error).toMatch(/not JSON/);
    // nothing was lost by any of that
    expect((await ack(env, { consumer: 'one', batchId: '1-5' })).json.acked).toBe(5);
    expect((await poll(env, 'consumer=one&max=5')).batchId).toBe('6-10');
    // removing a name frees its slot and its cursor: a new reader of it starts from the oldest event
    const del = await fetch(`${env.base}/api/events/consumers?consumer=one`, { method: 'DELETE' });
    expect(await del.json()).toEqual({ consumer: 'one', removed: true });
    expect((await poll(env, 'consumer=two&max=5')).batchId).toBe('1-5');
  });
  it('acknowledges only events handed to that consumer: anything else is a 400 and changes nothing', async () => {
    const env = await setup();
    await append(env.log, 10);
    expect((await poll(env, 'consumer=h&max=4')).batchId).toBe('1-4');
    const committed = () => env.log.readerStats().find((r) => r.name === 'local:h')!.committedSeq;
    const before = committed();
    for (const body of [
      { consumer: 'h', upTo: 2 ** 53 - 1 },
      { consumer: 'h', upTo: 5 },
      { consumer: 'h', batchId: '5-10' },
      { consumer: 'h', batchIds: ['1-4', '9-9'] },
      { consumer: 'h', batchId: '4-1' },
      { consumer: 'never-read', upTo: 1 },
    ]) {
      const r = await ack(env, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(String(r.json.error)).toMatch(/never handed|beyond the last event/);
    }
    expect(committed()).toBe(before);
    expect(env.log.readerStats().some((r) => r.name === 'local:never-read')).toBe(false);
    // the real ack still works, and the rest is still delivered
    expect((await ack(env, { consumer: 'h', upTo: 4 })).json.acked).toBe(4);
    expect(seqs(await poll(env, 'consumer=h&max=100'))).toEqual(range(5, 10));
  });

  it('releases an idle consumer: its cursor no longer holds the log, and it resumes after its last ack', async () => {
    const env = await setup({ idleTimeout: '1s' });
    await append(env.log, 10);
    const d = await poll(env, 'consumer=idle&max=5');
    expect((await ack(env, { consumer: 'idle', batchId: d.batchId })).json.acked).toBe(5);
    expect(env.log.readerStats().map((r) => r.name)).toContain('local:idle');
    const deadline = Date.now() + 5000;
    while (env.log.readerStats().some((r) => r.name === 'local:idle') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    expect(env.log.readerStats().map((r) => r.name)).not.toContain('local:idle');
    expect(env.consumers.status().idleReleased).toBe(1);
    expect(seqs(await poll(env, 'consumer=idle&max=100'))).toEqual(range(6, 10));
  });
});
