import mqtt, { type MqttClient } from 'mqtt';
import { beforeAll, describe, expect, it } from 'vitest';
import { type Peer, startMosquitto, tempDir } from '../../test/helpers/peers.js';
import { type TahuPeer, tahuPeer } from '../../test/helpers/tahu-peer.js';
import { until } from '../../test/helpers/until.js';
import { memoryRunner } from '../../test/helpers/uplink/memory-runner.js';
import { SparkplugSink } from './index.js';
import { sparkplugUplinkSchema } from './schema.js';
import { cleanupsAfterEach } from '../../test/helpers/cleanups.js';

/** A Sparkplug message as the independent Python decoder reads it. */
interface Decoded {
  timestamp?: string;
  seq?: string;
  metrics?: {
    name?: string;
    alias?: string;
    datatype?: number;
    is_historical?: boolean;
    double_value?: number;
    boolean_value?: boolean;
    long_value?: string;
    string_value?: string;
  }[];
}

let tahu: TahuPeer;
beforeAll(() => {
  tahu = tahuPeer();
  return tahu.cleanup;
});

const decode = (payloads: Buffer[]) => tahu.decode<Decoded>(payloads);

const cleanups = cleanupsAfterEach();

/** The SCADA side: every Sparkplug message in arrival order. */
async function host(url: string): Promise<{ seen: { topic: string; payload: Buffer }[]; client: MqttClient }> {
  const seen: { topic: string; payload: Buffer }[] = [];
  const client = await mqtt.connectAsync(url, { clientId: `scada-${Date.now()}` });
  client.on('message', (topic, payload) => seen.push({ topic, payload }));
  await client.subscribeAsync('spBv1.0/#', { qos: 1 });
  cleanups.push(() => client.endAsync(true));
  return { seen, client };
}

function setup(peer: Peer, dataDir: string) {
  const config = sparkplugUplinkSchema.parse({
    name: 'scada',
    type: 'sparkplug',
    url: peer.url,
    groupId: 'plant',
    devices: [{ name: 'pump7', match: 'plant/pump7/#' }],
    batch: { maxEvents: 100, maxDelay: 20 },
    retry: { initialDelay: 50, maxDelay: 500 },
    reconnect: { minDelay: 50, maxDelay: 200 },
    ackTimeout: '2s',
  });
  const run = memoryRunner(config, (ctx) => new SparkplugSink(config, ctx), { gatewayId: 'gw-sp', dataDir });
  cleanups.push(run.stop);
  return run;
}

const of = (seen: { topic: string; payload: Buffer }[], type: string) =>
  decode(seen.filter((m) => m.topic.split('/')[2] === type).map((m) => m.payload));

describe('sparkplug uplink (real Mosquitto, Python Tahu decoder)', () => {
  it('births the node and its devices, then sends data by alias, backlog marked historical', async () => {
    const peer = await startMosquitto();
    cleanups.push(() => peer.stop());
    const dir = tempDir();
    cleanups.push(() => dir.cleanup());
    const { seen } = await host(peer.url);
    const { log, runner } = setup(peer, dir.path);
    // Backlog: accepted before the uplink ever connected.
    log.append([
      { source: 'mqtt', topic: 'plant/pump7/temp', payload: { value: 21.5, unit: '°C' } },
      { source: 'plc-mb', topic: 'plant/line1/speed', payload: 1200 },
    ]);
    runner.start();
    await until(() => seen.filter((m) => m.topic.includes('/DDATA/')).length >= 2);
    const [nbirth] = of(seen, 'NBIRTH');
    expect(seen[0].topic).toBe('spBv1.0/plant/NBIRTH/gw-sp');
    expect(nbirth.seq ?? '0').toBe('0');
    const names = nbirth.metrics?.map((m) => m.name);
    expect(names).toEqual(['bdSeq', 'Node Control/Rebirth']);
    const births = of(seen, 'DBIRTH');
    const pumpBirth = births.find((b) => b.metrics?.some((m) => m.name === 'plant/pump7/temp'));
    expect(pumpBirth?.metrics?.[0]).toMatchObject({ name: 'plant/pump7/temp', datatype: 10, double_value: 21.5 });
    expect(seen.some((m) => m.topic === 'spBv1.0/plant/DBIRTH/gw-sp/pump7')).toBe(true);
    expect(seen.some((m) => m.topic === 'spBv1.0/plant/DBIRTH/gw-sp/plc-mb')).toBe(true);
    const alias = pumpBirth?.metrics?.[0].alias;
    const data = of(seen, 'DDATA');
    const pumpData = data.find((d) => d.metrics?.[0].alias === alias);
    expect(pumpData?.metrics?.[0]).toMatchObject({ double_value: 21.5, is_historical: true });
    expect(pumpData?.metrics?.[0].name).toBeUndefined();
    // seq counts every message of the session after NBIRTH's 0.
    expect(data.map((d) => Number(d.seq)).every((s) => s > 0)).toBe(true);

    // Live data: not historical.
    const before = seen.length;
    log.append([{ source: 'mqtt', topic: 'plant/pump7/temp', payload: { value: 22 } }]);
    await until(() => seen.slice(before).some((m) => m.topic.includes('/DDATA/gw-sp/pump7')));
    const [live] = decode(seen.slice(before).filter((m) => m.topic.includes('/DDATA/gw-sp/pump7')).map((m) => m.payload));
    expect(live.metrics?.[0]).toMatchObject({ double_value: 22 });
    expect(live.metrics?.[0].is_historical).toBeUndefined();
  });

  it('answers a rebirth request with NBIRTH and every DBIRTH; a lost connection publishes NDEATH with its bdSeq', async () => {
    const peer = await startMosquitto();
    cleanups.push(() => peer.stop());
    const dir = tempDir();
    cleanups.push(() => dir.cleanup());
    const { seen, client } = await host(peer.url);
    const { log, runner, sink } = setup(peer, dir.path);
    log.append([{ source: 'mqtt', topic: 'plant/pump7/temp', payload: 20 }]);
    runner.start();
    await until(() => seen.some((m) => m.topic.includes('/DDATA/')));
    const bdSeqOf = (d: Decoded) => Number(d.metrics?.find((m) => m.name === 'bdSeq')?.long_value ?? 0);
    const firstBdSeq = bdSeqOf(of(seen, 'NBIRTH')[0]);

    await client.publishAsync('spBv1.0/plant/NCMD/gw-sp', tahu.rebirth(), { qos: 1 });
    await until(() => of(seen, 'NBIRTH').length === 2 && of(seen, 'DBIRTH').length === 2);
    expect(bdSeqOf(of(seen, 'NBIRTH')[1])).toBe(firstBdSeq);

    // An ungraceful loss: the broker publishes the will.
    (sink as unknown as { mqtt: { client?: MqttClient } }).mqtt.client?.stream.destroy();
    await until(() => of(seen, 'NDEATH').length === 1);
    expect(bdSeqOf(of(seen, 'NDEATH')[0])).toBe(firstBdSeq);
    // The next session carries the next bdSeq, and is born again before any data.
    await until(() => of(seen, 'NBIRTH').length === 3);
    expect(bdSeqOf(of(seen, 'NBIRTH')[2])).toBe((firstBdSeq + 1) & 255);
  });

  it('keeps bdSeq across restarts and announces a clean stop with one NDEATH', async () => {
    const peer = await startMosquitto();
    cleanups.push(() => peer.stop());
    const dir = tempDir();
    cleanups.push(() => dir.cleanup());
    const { seen } = await host(peer.url);
    const first = setup(peer, dir.path);
    first.runner.start();
    await until(() => of(seen, 'NBIRTH').length === 1);
    await first.runner.stop(2000);
    // Announced once: its own NDEATH, and no last will on top (a clean DISCONNECT).
    await until(() => of(seen, 'NDEATH').length === 1);
    const second = setup(peer, dir.path);
    second.runner.start();
    await until(() => of(seen, 'NBIRTH').length === 2);
    expect(of(seen, 'NDEATH')).toHaveLength(1);
    const bdSeqs = of(seen, 'NBIRTH').map((d) => Number(d.metrics?.find((m) => m.name === 'bdSeq')?.long_value ?? 0));
    expect(bdSeqs[1]).toBe((bdSeqs[0] + 1) & 255);
  });
});
