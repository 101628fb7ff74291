/**
 * `/metrics` of a real gateway, parsed strictly: after QoS 1 publishes delivered to a cloud
 * Mosquitto, the PUBACK, commit and uplink round-trip histograms have counted them, the broker
 * clients gauge sees the publisher, every sluice `_total` is a counter, devices carry no state label.
 */
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { parseExposition } from '../helpers/prom-text.js';
import { startTestGateway, type TestGateway, waitFor } from '../helpers/gateway.js';
import { type Peer, startMosquitto } from '../helpers/peers.js';

describe('/metrics end to end', () => {
  let gw: TestGateway | undefined;
  let cloud: Peer | undefined;
  afterAll(async () => {
    await gw?.stop();
    gw?.cleanup();
    await cloud?.stop();
  });

  it('exposes latency histograms, the clients gauge and counters that parse', async () => {
    cloud = await startMosquitto();
    gw = await startTestGateway({
      uplinks: [{ name: 'cloud', type: 'mqtt', url: cloud.url }],
      drivers: [{ name: 'sim', type: 'simulator', interval: '50ms', sensors: [{ topic: 'sim/t', base: 20 }] }],
    } as never);
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw.mqttPort}`);
    for (let i = 0; i < 20; i++) await client.publishAsync('line/a/t', JSON.stringify({ value: i }), { qos: 1 });
    const families = await waitFor(async () => {
      const f = parseExposition(await (await fetch(`${gw!.url}/metrics`)).text());
      const rt = f.get('sluice_uplink_round_trip_seconds')?.samples.find((s) => s.name.endsWith('_count'));
      return rt && rt.value > 0 ? f : undefined;
    }, 15_000, 'an uplink round trip');
    const count = (name: string) => families.get(name)!.samples.find((s) => s.name === `${name}_count`)!.value;
    expect(count('sluice_broker_puback_seconds')).toBeGreaterThanOrEqual(20);
    expect(count('sluice_buffer_commit_seconds')).toBeGreaterThan(0);
    expect(families.get('sluice_uplink_round_trip_seconds')!.samples[0].labels.uplink).toBe('cloud');
    expect(families.get('sluice_broker_clients')!.samples[0].value).toBe(1);
    expect(families.get('sluice_build_info')!.samples[0].labels.version).toMatch(/\d+\.\d+/);
    expect(families.has('process_resident_memory_bytes')).toBe(true);
    for (const f of families.values()) if (f.name.startsWith('sluice_') && f.name.endsWith('_total')) expect(f.type, f.name).toBe('counter');
    const up = families.get('sluice_driver_device_up')!.samples;
    expect(up.every((s) => !('state' in s.labels))).toBe(true);
    expect(families.get('sluice_driver_device_state')!.samples.filter((s) => s.value === 1)).toHaveLength(1);
    await client.endAsync();
  });
});
