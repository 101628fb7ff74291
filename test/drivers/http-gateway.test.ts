/**
 * HTTP ingest as the gateway wires it: a device with a bearer token posts NDJSON to
 * `POST /api/events`; the events are in the ring log when the 200 arrives, and refusals are
 * counted in /api/status under ingest.rejected.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/auth/password.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

describe('POST /api/events on a running gateway', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({
      gateway: { id: 'gw-http' },
      broker: {
        allowAnonymous: false,
        users: [{ username: 'meter7', passwordHash: await hashPassword('pw'), tokenHash: await hashPassword('tok-meter7'), publish: ['meters/7/#'] }],
      },
    } as Partial<ConfigInput>);
  });
  afterAll(async () => {
    await gw?.stop();
    gw?.cleanup();
  });

  const post = (body: string, headers: Record<string, string>) =>
    fetch(`${gw.url}/api/events`, { method: 'POST', body, headers: { 'content-type': 'application/x-ndjson', ...headers } });

  it('stores the events before answering 200, and counts refusals', async () => {
    const ok = await post('{"topic":"meters/7/kwh","payload":{"value":12.5,"unit":"kWh"}}\n{"topic":"meters/7/v","payload":231}\n', {
      authorization: 'Bearer tok-meter7',
    });
    expect(ok.status).toBe(200);
    const { firstSeq, lastSeq, accepted } = (await ok.json()) as { firstSeq: number; lastSeq: number; accepted: number };
    expect(accepted).toBe(2);
    const reader = gw.gateway.log.reader('http-check');
    const stored = (await reader.next(100, 1 << 20)).filter((e) => e.seq >= firstSeq && e.seq <= lastSeq).map((e) => JSON.parse(e.json));
    expect(stored.map((e) => [e.topic, e.payload, e.source])).toEqual([
      ['meters/7/kwh', { value: 12.5, unit: 'kWh' }, 'http'],
      ['meters/7/v', 231, 'http'],
    ]);

    expect((await post('{"topic":"meters/8/kwh","payload":1}', { authorization: 'Bearer tok-meter7' })).status).toBe(403);
    expect((await post('{"topic":"meters/7/kwh","payload":1}', {})).status).toBe(401);
    const bad = await post('{"topic":"meters/7/kwh","payload":1}\nnot json\n', { authorization: 'Bearer tok-meter7' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/^line 2: not JSON/);
    const status = (await (await fetch(`${gw.url}/api/status`)).json()) as { ingest: { rejected: number; rejectedByReason: Record<string, number> } };
    expect(status.ingest.rejectedByReason).toMatchObject({ acl_publish: 1, auth_anonymous: 1, malformed: 1 });
  });
});
