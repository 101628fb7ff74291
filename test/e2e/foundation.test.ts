/**
 * The foundation end to end: readings published by an ordinary MQTT client (mosquitto_pub) to the
 * gateway's broker reach a real Mosquitto standing in for the cloud, in contract batches; seq keeps
 * increasing across restarts; /api/status and /metrics count them; bad input is refused and counted.
 */
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway, waitFor } from '../helpers/gateway.js';
import { mosquittoPub, type Peer, startMosquitto, tempDir } from '../helpers/peers.js';
import type { SluiceEvent } from '../../src/core/event.js';

describe('sensor → broker → ring log → MQTT uplink', () => {
  let cloud: Peer;
  let sub: mqtt.MqttClient;
  const batches: { gateway: string; batchId: string; events: SluiceEvent[] }[] = [];
  const data = tempDir('sluice-e2e-');
  let gw: TestGateway;

  const events = () => batches.flatMap((b) => b.events);
  const config = () => ({
    gateway: { id: 'gw-e2e', dataDir: data.path },
    uplinks: [{ name: 'cloud', type: 'mqtt' as const, url: cloud.url, topicPrefix: 'sluice' }],
  });

  beforeAll(async () => {
    cloud = await startMosquitto('', true);
    // A persistent session: batches sent while the test subscriber reconnects are queued for it.
    sub = await mqtt.connectAsync(cloud.url, { clientId: 'e2e-cloud-sub', clean: false });
    await sub.subscribeAsync('sluice/gw-e2e/events', { qos: 1 });
    sub.on('message', (_t, payload) => batches.push(JSON.parse(payload.toString())));
    gw = await startTestGateway(config(), data.path);
  });

  afterAll(async () => {
    await gw?.stop();
    await sub?.endAsync();
    await cloud?.stop();
    data.cleanup();
  });

  it('delivers 2000 QoS 1 publishes from mosquitto_pub in contract batches, in order', async () => {
    const lines = Array.from({ length: 2000 }, (_, i) => JSON.stringify({ value: i, unit: '°C' })).join('\n');
    const r = await mosquittoPub(gw.mqttPort, ['-q', '1', '-t', 'sensors/kitchen/temp', '-l'], `${lines}\n`);
    expect(r.status, r.stderr).toBe(0);

    await waitFor(() => events().length >= 2000, 20_000, '2000 events at the cloud broker').catch(async (err) => {
      const s = await (await fetch(`${gw.url}/api/status`)).json();
      throw new Error(`${err.message}; got ${events().length}; status ${JSON.stringify(s)}`);
    });
    const got = events();
    expect(got).toHaveLength(2000);
    for (const b of batches) {
      expect(b.gateway).toBe('gw-e2e');
      expect(b.batchId).toBe(`${b.events[0].seq}-${b.events[b.events.length - 1].seq}`);
    }
    got.forEach((e, i) => {
      expect(e).toMatchObject({
        source: 'mqtt',
        topic: 'sensors/kitchen/temp',
        kind: 'reading',
        payload: { value: i, unit: '°C' },
      });
      expect(e.id).toBe(`gw-e2e:${e.seq}`);
      if (i > 0) expect(e.seq).toBe(got[i - 1].seq + 1);
    });

    const status = await (await fetch(`${gw.url}/api/status`)).json();
    expect(status.gateway).toMatchObject({ id: 'gw-e2e' });
    expect(typeof status.gateway.version).toBe('string');
    expect(status.ingest.received).toBe(2000);
    expect(status.buffer.events).toBeGreaterThanOrEqual(2000);
    const uplink = await waitFor(
      async () => {
        const s = await (await fetch(`${gw.url}/api/status`)).json();
        const u = s.uplinks.find((x: { name: string }) => x.name === 'cloud');
        return u.deliveredEvents === 2000 && u.pendingEvents === 0 ? u : undefined;
      },
      10_000,
      'uplink status to settle',
    );
    expect(uplink).toMatchObject({ name: 'cloud', type: 'mqtt', connected: true });

    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(/^sluice_ingest_events_total\{source="mqtt"\} 2000$/m);
    expect(metrics).toMatch(/^sluice_uplink_delivered_events_total\{uplink="cloud"\} 2000$/m);
    expect(metrics).toMatch(/^sluice_buffer_events \d+$/m);
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
  });

  it('keeps a non-JSON payload as a string', async () => {
    const before = events().length;
    expect((await mosquittoPub(gw.mqttPort, ['-q', '1', '-t', 'sensors/raw', '-m', 'OK 21.5C'])).status).toBe(0);
    const e = await waitFor(
      () =>
        events()
          .slice(before)
          .find((x) => x.topic === 'sensors/raw'),
      10_000,
      'the raw event',
    );
    expect(e.payload).toBe('OK 21.5C');
  });

  it('refuses and counts a publish over the size limit, and keeps serving others', async () => {
    const big = 'x'.repeat(300 * 1024); // default limit 256 KiB
    await mosquittoPub(gw.mqttPort, ['-q', '1', '-t', 'sensors/big', '-s'], big);
    const status = await waitFor(
      async () => {
        const s = await (await fetch(`${gw.url}/api/status`)).json();
        return s.ingest.rejectedByReason.oversize >= 1 ? s : undefined;
      },
      5000,
      'the oversize refusal to be counted',
    );
    expect(status.ingest.rejected).toBeGreaterThanOrEqual(1);
    expect(events().some((e) => e.topic === 'sensors/big')).toBe(false);
    expect((await mosquittoPub(gw.mqttPort, ['-q', '1', '-t', 'sensors/after', '-m', '1'])).status).toBe(0);
    await waitFor(() => events().some((e) => e.topic === 'sensors/after'), 10_000, 'a publish after the refusal');
  });

  it('continues seq after a restart and delivers what waited while the cloud was down', async () => {
    const lastSeq = Math.max(...events().map((e) => e.seq));
    await cloud.kill('SIGTERM');
    expect((await mosquittoPub(gw.mqttPort, ['-q', '1', '-t', 'sensors/while-down', '-m', '7'])).status).toBe(0);
    await gw.stop();
    gw = await startTestGateway(config(), data.path);
    expect((await mosquittoPub(gw.mqttPort, ['-q', '1', '-t', 'sensors/after-restart', '-m', '8'])).status).toBe(0);
    await cloud.start();
    const after = await waitFor(
      () => {
        const e = events().filter((x) => x.seq > lastSeq);
        return e.some((x) => x.topic === 'sensors/after-restart') && e.some((x) => x.topic === 'sensors/while-down')
          ? e
          : undefined;
      },
      20_000,
      'events published while the cloud was down and after the restart',
    );
    const waited = after.find((x) => x.topic === 'sensors/while-down')!;
    const fresh = after.find((x) => x.topic === 'sensors/after-restart')!;
    expect(waited.seq).toBeGreaterThan(lastSeq);
    expect(fresh.seq).toBeGreaterThan(waited.seq);
  });
});
