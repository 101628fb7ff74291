/**
 * `start:` of an uplink with no stored cursor, on a real gateway and a cloud Mosquitto: `oldest`
 * replays what the log holds, `latest` sends only what comes after it was added, a duration sends
 * what was stored within it. The `latest` cursor is persisted before anything is sent: added while
 * the cloud is down and restarted, it delivers what arrived in between, not a new "latest".
 */
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { startTestGateway, type TestGateway, waitFor } from '../helpers/gateway.js';
import { type Peer, startMosquitto, tempDir } from '../helpers/peers.js';

describe('uplink start: oldest | latest | duration', () => {
  const data = tempDir('sluice-uplink-start-');
  let gw: TestGateway | undefined;
  let cloud: Peer | undefined;
  let sub: mqtt.MqttClient | undefined;
  afterAll(async () => {
    await sub?.endAsync();
    await gw?.stop();
    await cloud?.stop();
    data.cleanup();
  });

  it('starts each new uplink where it asks, and keeps the latest cursor across a restart', async () => {
    cloud = await startMosquitto('', true);
    const got: Record<string, number[]> = {};
    sub = await mqtt.connectAsync(cloud.url);
    await sub.subscribeAsync('#', { qos: 1 });
    sub.on('message', (topic, body) => {
      const who = topic.split('/')[0];
      const batch = JSON.parse(body.toString()) as { events: { payload: { value: number } }[] };
      (got[who] ??= []).push(...batch.events.map((e) => e.payload.value));
    });
    const base = { gateway: { id: 'gw-start', dataDir: data.path } };
    gw = await startTestGateway(base, data.path);
    const post = async (...values: number[]) => {
      const body = values.map((v) => JSON.stringify({ topic: 'line/a/t', payload: { value: v } })).join('\n');
      const r = await fetch(`${gw!.url}/api/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body });
      expect(r.status).toBeLessThan(300);
    };
    await post(1, 2, 3);
    await new Promise((r) => setTimeout(r, 2500));
    await post(4, 5);

    const uplink = (name: string, start: string, url = cloud!.url) => ({
      name, type: 'mqtt', url, topicPrefix: name, start, retry: { initialDelay: '100ms', maxDelay: '500ms' },
    });
    const withUplinks = (...uplinks: object[]) =>
      validateConfig({ ...gw!.gateway.config, uplinks } as never);
    await gw.gateway.reconfigure(withUplinks(uplink('old', 'oldest'), uplink('new', 'latest'), uplink('recent', '2s')));
    await post(6);
    await waitFor(() => got.old?.length === 6 && got.new?.length === 1 && got.recent?.length === 3, 15_000, 'deliveries');
    expect(got.old).toEqual([1, 2, 3, 4, 5, 6]);
    expect(got.new).toEqual([6]);
    expect(got.recent).toEqual([4, 5, 6]);

    // Once an uplink has a cursor, start: no longer applies (changing it replays nothing).
    await gw.gateway.reconfigure(withUplinks(uplink('old', 'oldest'), uplink('new', 'oldest'), uplink('recent', '2s')));
    await post(7);
    await waitFor(() => got.new?.length === 2, 10_000, 'new after its start changed');
    expect(got.new).toEqual([6, 7]);

    // A `latest` uplink added while the cloud is unreachable, then a restart: its cursor was stored.
    await cloud.kill();
    const down = 'mqtt://127.0.0.1:1';
    const config = withUplinks(uplink('late', 'latest', down));
    await gw.gateway.reconfigure(config);
    await waitFor(() => gw!.gateway.log.readerStats().some((r) => r.name === 'late'), 5000, 'the late cursor');
    await post(8, 9);
    await gw.stop();
    await cloud.start();
    await sub.endAsync();
    sub = await mqtt.connectAsync(cloud.url);
    await sub.subscribeAsync('#', { qos: 1 });
    sub.on('message', (topic, body) => {
      const batch = JSON.parse(body.toString()) as { events: { payload: { value: number } }[] };
      (got[topic.split('/')[0]] ??= []).push(...batch.events.map((e) => e.payload.value));
    });
    gw = await startTestGateway({ ...base, uplinks: [uplink('late', 'latest')] } as never, data.path);
    await waitFor(() => got.late?.length === 2, 15_000, 'late after the restart');
    expect(got.late).toEqual([8, 9]);
  });
});
