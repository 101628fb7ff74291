/**
 * Sparkplug B ingest end to end, against an independent implementation: an edge node session
 * encoded by Python's protobuf runtime (src/sparkplug/tahu_peer.py: NBIRTH, DBIRTH, DDATA by alias,
 * then a DDATA with a seq gap and an unknown alias) is published with mosquitto_pub -f to the
 * gateway's broker. Named metric events and birth status events arrive at a real Mosquitto standing
 * in for the cloud, the raw bytes too (base64), and the gap makes the gateway publish an NCMD
 * `Node Control/Rebirth` on its broker, which a subscriber sees and Python decodes.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway, waitFor } from '../helpers/gateway.js';
import { mosquittoPub, type Peer, startMosquitto, tempDir } from '../helpers/peers.js';
import { type TahuPeer, tahuPeer } from '../helpers/tahu-peer.js';
import type { SluiceEvent } from '../../src/core/event.js';

describe('Sparkplug B ingest: Python-encoded edge node → gateway broker → cloud Mosquitto', () => {
  let cloud: Peer;
  let sub: mqtt.MqttClient;
  let local: mqtt.MqttClient;
  const batches: { events: SluiceEvent[] }[] = [];
  const commands: Buffer[] = [];
  const data = tempDir('sluice-spb-');
  let gw: TestGateway;
  let tahu: TahuPeer;
  let scenario: { topic: string; body: Buffer }[] = [];
  const events = () => batches.flatMap((b) => b.events);

  beforeAll(async () => {
    tahu = tahuPeer();
    scenario = tahu.scenario();
    cloud = await startMosquitto('', true);
    sub = await mqtt.connectAsync(cloud.url, { clientId: 'spb-cloud-sub', clean: false });
    await sub.subscribeAsync('sluice/gw-spb/events', { qos: 1 });
    sub.on('message', (_t, payload) => batches.push(JSON.parse(payload.toString())));
    gw = await startTestGateway(
      {
        gateway: { id: 'gw-spb', dataDir: data.path },
        uplinks: [{ name: 'cloud', type: 'mqtt' as const, url: cloud.url, topicPrefix: 'sluice' }],
        sparkplug: { ingest: true, keepRaw: true },
      },
      data.path,
    );
    local = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw.mqttPort}`, { clientId: 'spb-edge-cmd' });
    await local.subscribeAsync('spBv1.0/plant/NCMD/line1', { qos: 1 });
    local.on('message', (_t, payload) => commands.push(payload));
  });

  afterAll(async () => {
    await local?.endAsync();
    await gw?.stop();
    await sub?.endAsync();
    await cloud?.stop();
    data.cleanup();
    tahu?.cleanup();
  });

  it('turns births and DDATA by alias into named metric events, and asks for a rebirth on a seq gap with an unknown alias', async () => {
    const [nbirth, dbirth, ddata, gap] = scenario;
    for (const [i, m] of [nbirth, dbirth, ddata].entries()) {
      const file = join(data.path, `m${i}.bin`);
      writeFileSync(file, m.body);
      const r = await mosquittoPub(gw.mqttPort, ['-q', '1', '-t', m.topic, '-f', file]);
      expect(r.status, r.stderr).toBe(0);
    }
    await waitFor(() => events().some((e) => e.topic === 'spBv1.0/plant/line1/pump7/count' && (e.payload as { value: number }).value === -7), 20_000, 'the DDATA metrics at the cloud broker');
    const named = events().filter((e) => e.topic.startsWith('spBv1.0/plant/line1/pump7/') && e.kind === 'reading');
    // The DDATA carried aliases only: its metrics arrive by name, with their birth's datatypes.
    expect(named.map((e) => e.payload)).toEqual(
      expect.arrayContaining([
        { metric: 'temp', value: 22.25, datatype: 'Double', group: 'plant', node: 'line1', device: 'pump7' },
        { metric: 'count', value: -7, datatype: 'Int32', group: 'plant', node: 'line1', device: 'pump7' },
      ]),
    );
    expect(named.find((e) => (e.payload as { value: number }).value === 22.25)?.deviceTs).toBe(1700000000000);
    const births = events().filter((e) => e.kind === 'status').map((e) => (e.payload as { sparkplug: string }).sparkplug);
    expect(births).toEqual(['NBIRTH', 'DBIRTH']);
    // The raw protobuf is kept too, byte-exact.
    const raw = events().find((e) => e.topic === ddata.topic);
    expect(raw?.payloadEncoding).toBe('base64');
    expect(Buffer.from(raw?.payload as string, 'base64').equals(ddata.body)).toBe(true);
    expect(commands).toHaveLength(0);

    const file = join(data.path, 'gap.bin');
    writeFileSync(file, gap.body);
    const r = await mosquittoPub(gw.mqttPort, ['-q', '1', '-t', gap.topic, '-f', file]);
    expect(r.status, r.stderr).toBe(0);
    await waitFor(() => commands.length > 0, 10_000, 'the NCMD rebirth request on the gateway broker');
    // Decoded by the independent peer, not by the gateway's own decoder.
    const [decoded] = tahu.decode<{ metrics: { name: string; boolean_value: boolean }[] }>([commands[0]]);
    expect(decoded.metrics).toEqual([expect.objectContaining({ name: 'Node Control/Rebirth', boolean_value: true })]);
    // The metric with the unknown alias is kept, named by its alias, never dropped.
    await waitFor(() => events().some((e) => e.topic === 'spBv1.0/plant/line1/pump7/alias:9'), 10_000, 'the unknown-alias metric');
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(/sluice_sparkplug_rebirths_requested_total 1\b/);
  });
});
