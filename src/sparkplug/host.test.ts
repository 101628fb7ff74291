import { beforeAll, describe, expect, it } from 'vitest';
import { tahuPeer } from '../../test/helpers/tahu-peer.js';
import { SparkplugHost } from './host.js';
import { decodePayload } from '../core/sparkplug/payload.js';

let scenario: { topic: string; body: Buffer }[] = [];

beforeAll(() => {
  const tahu = tahuPeer();
  scenario = tahu.scenario();
  return tahu.cleanup;
});

const payloads = (events: { payload: unknown }[]) => events.map((e) => e.payload as Record<string, unknown>);

describe('Sparkplug B ingest (payloads encoded by Python protobuf)', () => {
  it('resolves aliases from the birth certificate, keeps signed and 64-bit values, and asks for a rebirth on a seq gap', () => {
    let now = 0;
    const host = new SparkplugHost({ maxNodes: 10, maxMetrics: 100, rebirthEvery: 5000 }, () => now);
    const [nbirth, dbirth, ddata, gap] = scenario.map((m) => host.decode(m.topic, m.body));
    expect(nbirth.events[0]).toMatchObject({ kind: 'status', topic: 'spBv1.0/plant/line1', payload: { sparkplug: 'NBIRTH', bdSeq: 3 } });
    expect(dbirth.problem).toBeUndefined();
    expect(payloads(dbirth.events.slice(1))).toEqual([
      { metric: 'temp', value: 21.5, datatype: 'Double', group: 'plant', node: 'line1', device: 'pump7' },
      { metric: 'running', value: true, datatype: 'Boolean', group: 'plant', node: 'line1', device: 'pump7' },
      { metric: 'count', value: -5, datatype: 'Int32', group: 'plant', node: 'line1', device: 'pump7' },
      { metric: 'total', value: '-9007199254740993', datatype: 'Int64', group: 'plant', node: 'line1', device: 'pump7' },
    ]);
    expect(ddata.problem).toBeUndefined();
    expect(ddata.rebirth).toBeUndefined();
    expect(ddata.events.map((e) => [e.topic, e.deviceTs])).toEqual([
      ['spBv1.0/plant/line1/pump7/temp', 1700000000000],
      ['spBv1.0/plant/line1/pump7/count', 1700000000000],
    ]);
    expect(payloads(ddata.events).map((p) => p.value)).toEqual([22.25, -7]);
    // seq 4 after 2, and an alias never born: kept, named by alias, and the node is asked to rebirth.
    expect(gap.problem).toMatch(/seq 4 where 3 was next/);
    expect(payloads(gap.events)).toEqual([
      { metric: 'alias:9', value: 1.5, datatype: 'Unknown', group: 'plant', node: 'line1', device: 'pump7' },
    ]);
    expect(gap.rebirth?.topic).toBe('spBv1.0/plant/NCMD/line1');
    const ncmd = decodePayload(gap.rebirth!.payload);
    expect(ncmd.metrics).toMatchObject([{ name: 'Node Control/Rebirth', value: true }]);
    // A second problem within rebirthEvery does not ask again; later it does.
    expect(host.decode(scenario[3].topic, scenario[3].body).rebirth).toBeUndefined();
    now += 6000;
    expect(host.decode(scenario[3].topic, scenario[3].body).rebirth).toBeDefined();
  });

  it('keeps data from a node it never saw born, and asks for its birth', () => {
    const host = new SparkplugHost({ maxNodes: 10, maxMetrics: 100, rebirthEvery: 5000 });
    const { events, rebirth, problem } = host.decode(scenario[2].topic, scenario[2].body);
    expect(problem).toMatch(/never born/);
    expect(rebirth?.topic).toBe('spBv1.0/plant/NCMD/line1');
    expect(payloads(events).map((p) => [p.metric, p.value])).toEqual([
      ['alias:1', 22.25],
      ['alias:3', 4294967289],
    ]);
  });

  it('refuses garbage and topics that are not an edge node, with a reason', () => {
    const host = new SparkplugHost({ maxNodes: 1, maxMetrics: 2, rebirthEvery: 5000 });
    expect(host.decode('spBv1.0/plant/DDATA/line1/pump7', Buffer.from([0xff, 0xff, 0xff])).problem).toMatch(/not a Sparkplug B payload/);
    expect(host.decode('spBv1.0/STATE/scada', Buffer.from('ONLINE')).problem).toMatch(/not a Sparkplug B edge node topic/);
    host.decode(scenario[0].topic, scenario[0].body);
    expect(host.decode(scenario[1].topic, scenario[1].body).problem).toMatch(/2 metrics over the limit of 2/);
    expect(host.decode('spBv1.0/plant/NBIRTH/line2', scenario[0].body).problem).toMatch(/already tracking 1/);
  });
});
