/**
 * The gateway's HTTP API end to end: events posted to `POST /api/events` (HTTP ingest) come back
 * to a local consumer through `GET /api/events?consumer=NAME`, are acknowledged with
 * `POST /api/events/ack`, and the consumer's cursor survives a restart.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { tempDir } from '../helpers/peers.js';

describe('HTTP ingest and local consumers through one gateway', () => {
  const data = tempDir('sluice-http-api-');
  let gw: TestGateway;
  afterAll(async () => {
    await gw?.stop();
    data.cleanup();
  });

  const poll = async (max = 100) =>
    (await (await fetch(`${gw.url}/api/events?consumer=historian&max=${max}&wait=2s`)).json()) as {
      batchId: string | null;
      events: { seq: number; topic: string; payload: unknown; source: string }[];
    };

  it('hands posted events to a consumer, and resumes after its last ack across a restart', async () => {
    gw = await startTestGateway({ gateway: { id: 'gw-http', dataDir: data.path } }, data.path);
    const body = [1, 2, 3].map((v) => JSON.stringify({ topic: 'line/a/count', payload: { value: v } })).join('\n');
    const posted = await fetch(`${gw.url}/api/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body });
    expect(posted.status).toBeLessThan(300);

    const first = await poll(2);
    expect(first.events.map((e) => e.payload)).toEqual([{ value: 1 }, { value: 2 }]);
    expect(first.events[0]).toMatchObject({ topic: 'line/a/count', source: 'http' });
    const ack = await fetch(`${gw.url}/api/events/ack`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ consumer: 'historian', batchId: first.batchId }),
    });
    expect(await ack.json()).toMatchObject({ acked: 2 });

    await gw.stop();
    gw = await startTestGateway({ gateway: { id: 'gw-http', dataDir: data.path } }, data.path);
    const second = await poll();
    expect(second.events.map((e) => e.payload)).toEqual([{ value: 3 }]);
    expect(second.events[0].seq).toBe(first.events[1].seq + 1);
  });
});
