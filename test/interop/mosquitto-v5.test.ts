/**
 * Mosquitto's own MQTT 5 clients against the gateway: `mosquitto_pub -V mqttv5` with user
 * properties and a content type publishes to the gateway's broker; `mosquitto_sub -V mqttv5` on the
 * gateway sees the properties, and the stored event reaches a real Mosquitto (the cloud) through
 * the MQTT uplink carrying them in its envelope. Two `mosquitto_sub -V mqttv5 -t '$share/g/...'`
 * share what is published there.
 */
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway, waitFor } from '../helpers/gateway.js';
import { mosquittoPub, type Peer, startMosquitto } from '../helpers/peers.js';

const run = promisify(execFile);

let gw: TestGateway | undefined;
let cloud: Peer | undefined;
let cloudSub: mqtt.MqttClient | undefined;
afterAll(async () => {
  await cloudSub?.endAsync(true);
  await gw?.stop();
  gw?.cleanup();
  await cloud?.stop();
});

describe('mosquitto_pub/sub -V mqttv5 against the gateway', () => {
  it('keeps user properties and the content type from the device to the cloud', async () => {
    cloud = await startMosquitto();
    const batches: Array<{ events: Array<Record<string, unknown>> }> = [];
    cloudSub = await mqtt.connectAsync(cloud.url, { reconnectPeriod: 0 });
    cloudSub.on('message', (_t, m) => batches.push(JSON.parse(m.toString())));
    await cloudSub.subscribeAsync('cloud/#', { qos: 1 });
    gw = await startTestGateway({ uplinks: [{ name: 'cloud', type: 'mqtt', url: cloud.url, topicPrefix: 'cloud' }] });
    const port = String(gw.mqttPort);

    // A local MQTT 5 subscriber on the gateway, printing topic, user properties and payload.
    const sub = spawn('mosquitto_sub', ['-V', 'mqttv5', '-p', port, '-t', 'sensors/#', '-C', '1', '-F', '%t|%P|%p'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let subOut = '';
    sub.stdout.on('data', (d) => (subOut += d));
    const subDone = new Promise((r) => sub.once('exit', r));
    await new Promise((r) => setTimeout(r, 500)); // subscribed

    await run('mosquitto_pub', [
      ...['-V', 'mqttv5', '-p', port, '-q', '1', '-t', 'sensors/boiler/temp', '-m', '{"value":71.5}'],
      ...['-D', 'publish', 'user-property', 'site', 'north'],
      ...['-D', 'publish', 'user-property', 'line', '3'],
      ...['-D', 'publish', 'content-type', 'application/json'],
    ]);
    await subDone;
    expect(subOut.trim()).toMatch(/^sensors\/boiler\/temp\|.*site:north.*\|\{"value":71\.5\}$/);
    expect(subOut).toContain('line:3');

    const event = await waitFor(() => batches.flatMap((b) => b.events).find((e) => e.topic === 'sensors/boiler/temp'), 15_000, 'the event at the cloud Mosquitto');
    expect(event).toMatchObject({
      source: 'mqtt',
      payload: { value: 71.5 },
      userProperties: { site: 'north', line: '3' },
      contentType: 'application/json',
    });
  }, 60_000);

  it("splits a shared subscription between two mosquitto_sub -V mqttv5 -t '$share/g/...'", async () => {
    gw ??= await startTestGateway();
    const port = String(gw.mqttPort);
    const subscriber = () => {
      const p = spawn('mosquitto_sub', ['-V', 'mqttv5', '-p', port, '-q', '1', '-t', '$share/g/sensors/shared', '-C', '3', '-W', '30'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      p.stdout.on('data', (d) => (out += d));
      return { done: new Promise((r) => p.once('exit', r)).then(() => out.trim().split('\n')) };
    };
    const a = subscriber();
    const b = subscriber();
    await new Promise((r) => setTimeout(r, 500)); // subscribed
    for (let i = 0; i < 6; i++) expect((await mosquittoPub(gw.mqttPort, ['-V', 'mqttv5', '-q', '1', '-t', 'sensors/shared', '-m', String(i)])).status).toBe(0);
    const [gotA, gotB] = await Promise.all([a.done, b.done]);
    expect(gotA).toHaveLength(3);
    expect(gotB).toHaveLength(3);
    expect([...gotA, ...gotB].sort()).toEqual(['0', '1', '2', '3', '4', '5']);
  }, 60_000);
});
