/**
 * Liveness and condition apart, end to end: with the cloud broker gone and events piling up,
 * `/healthz` stays 200 (the process is fine) while `/api/status` and `sluice status` say degraded
 * with the reason (exit 3); healthy is exit 0; a gateway that does not answer is exit 4.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { sluice } from '../helpers/cli.js';
import { startTestGateway, type TestGateway, waitFor } from '../helpers/gateway.js';
import { type Peer, startMosquitto } from '../helpers/peers.js';

describe('sluice status: condition and exit codes', () => {
  let gw: TestGateway | undefined;
  let cloud: Peer | undefined;
  afterAll(async () => {
    await gw?.stop();
    gw?.cleanup();
    await cloud?.stop();
  });

  it('exits 0 healthy, 3 degraded with the uplink and its lag, 4 when nothing answers', async () => {
    cloud = await startMosquitto();
    gw = await startTestGateway({
      uplinks: [{ name: 'cloud', type: 'mqtt', url: cloud.url, retry: { initialDelay: '100ms', maxDelay: '500ms' } }],
    } as never);
    const url = gw.url;
    await waitFor(async () => (await sluice('status', '--url', url)).code === 0, 10_000, 'a healthy status');

    await cloud.kill();
    const post = (v: number) =>
      fetch(`${url}/api/events`, { method: 'POST', body: JSON.stringify({ topic: 'line/a/t', payload: { value: v } }) });
    for (let i = 0; i < 5; i++) expect((await post(i)).status).toBeLessThan(300);

    const degraded = await waitFor(async () => {
      const r = await sluice('status', '--url', url);
      return r.code === 3 && r.out.includes('uplink cloud is down') ? r : undefined;
    }, 15_000, 'a degraded status');
    expect(degraded.out).toContain('condition DEGRADED');
    expect(degraded.out).toMatch(/uplink cloud is down with \d+ events waiting/);
    expect(degraded.out).toMatch(/uplink +cloud \(mqtt\) DISCONNECTED, lag \d+ events \(oldest unsent \d+ s old\)/);
    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);
    const status = (await (await fetch(`${url}/api/status`)).json()) as { condition: { state: string; reasons: string[] } };
    expect(status.condition.state).toBe('degraded');
    const json = await sluice('status', '--url', url, '--json');
    expect(json.code).toBe(3);

    await cloud.start();
    await waitFor(async () => (await sluice('status', '--url', url)).code === 0, 15_000, 'healthy again');

    await gw.stop();
    const gone = await sluice('status', '--url', url);
    expect(gone.code).toBe(4);
    expect(gone.err).toContain('no gateway answers');
    gw.cleanup();
    gw = undefined;
  });
});
