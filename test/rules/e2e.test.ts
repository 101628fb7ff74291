/**
 * Rules end to end on a real gateway, with the config example of the rules guide (the issue's):
 * a door opening then 30 °C within 60 s in the same room raises one alarm (none for another room),
 * which reaches the cloud Mosquitto ahead of the backlog that built while the link was down; a
 * heartbeat missing for 10 s raises one alarm; a derived `power` is computed; the uplink with a
 * `where:` receives only the matching events while the other receives all of them.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { type FaultProxy, startFaultProxy } from '../helpers/fault-proxy.js';
import { startTestGateway, type TestGateway, waitFor } from '../helpers/gateway.js';
import { tempDir } from '../helpers/peers.js';

interface WireEvent {
  seq: number;
  topic: string;
  kind: string;
  payload: Record<string, unknown>;
}

const CLOUD = 'mqtt://127.0.0.1:1883';
const ISSUE_EXAMPLE = readFileSync(new URL('../../src/rules/examples/issue.yaml', import.meta.url), 'utf8');

describe('rules end to end', () => {
  const prefix = `rules-e2e-${randomBytes(4).toString('hex')}`;
  const data = tempDir('sluice-rules-e2e-');
  let proxy: FaultProxy;
  let gw: TestGateway;
  let sensor: mqtt.MqttClient;
  let cloud: mqtt.MqttClient;
  const all: WireEvent[][] = [];
  const hot: WireEvent[] = [];

  beforeAll(async () => {
    proxy = await startFaultProxy({ targetPort: 1883 });
    proxy.refuse(true); // the link of uplink "all" is down: a backlog builds
    const example = parseConfigText(ISSUE_EXAMPLE) as { rules: unknown[]; uplinks: { topicPrefix: string; url: string }[] };
    const fast = { retry: { initialDelay: 100, maxDelay: 300 }, reconnect: { minDelay: 100, maxDelay: 300 } };
    cloud = await mqtt.connectAsync(CLOUD, { clientId: `${prefix}-cloud` });
    await cloud.subscribeAsync(`${prefix}/+/gw-rules/events`, { qos: 1 });
    cloud.on('message', (topic, payload) => {
      const events = JSON.parse(payload.toString()).events as WireEvent[];
      if (topic.startsWith(`${prefix}/hot/`)) hot.push(...events);
      else all.push(events);
    });
    gw = await startTestGateway(
      {
        gateway: { id: 'gw-rules', dataDir: data.path },
        rules: example.rules as never,
        uplinks: [
          // The example's `hot` uplink, on a topic prefix of this test.
          { ...(example.uplinks[0] as object), topicPrefix: `${prefix}/hot`, ...fast } as never,
          { name: 'all', type: 'mqtt', url: proxy.url('mqtt'), topicPrefix: `${prefix}/all`, ...fast },
        ],
      },
      data.path,
    );
    sensor = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw.mqttPort}`, { clientId: 'sensors' });
  });

  afterAll(async () => {
    await sensor?.endAsync();
    await cloud?.endAsync();
    await gw?.stop();
    await proxy?.close();
    data.cleanup();
  });

  it('raises the sequence and absence alarms, derives power, routes by where:, alarms ahead of the backlog', async () => {
    const pub = (topic: string, payload: unknown) => sensor.publishAsync(topic, JSON.stringify(payload), { qos: 1 });
    const started = Date.now();
    await pub('plant/p1/heartbeat', { up: true }); // then silence
    for (let i = 0; i < 300; i++) await pub('plant/line/noise', { value: i % 10 }); // the backlog
    await pub('plant/a/meter', { v: 230, i: 2.5 });
    await pub('rooms/a/door', { open: true });
    await pub('rooms/b/temp', { value: 55 }); // another room: no alarm (but hot: > 50)
    await pub('rooms/a/temp', { value: 29 });
    await pub('rooms/a/temp', { value: 30 }); // JSON integer 30 against `>= 30.0`: the alarm
    await pub('rooms/a/temp', { value: 31 }); // the same match: no second alarm
    await pub('rooms/b/temp', { value: 36 });

    const rule = (name: string) => gw.gateway.rules!.status().find((r) => r.name === name)!;
    await waitFor(() => rule('door-then-heat').matches === 1, 5000, 'the sequence alarm');
    expect(rule('power').matches).toBe(1);
    await waitFor(() => rule('heartbeat-lost').matches === 1, 15_000, 'the heartbeat alarm');
    expect(Date.now() - started).toBeGreaterThanOrEqual(10_000 - 50);
    await new Promise((r) => setTimeout(r, 1200)); // a further tick: still one heartbeat alarm
    expect(rule('heartbeat-lost').matches).toBe(1);
    expect(rule('door-then-heat').matches).toBe(1);

    // The uplink with `where:` got only what matches (while the link of the other was down).
    await waitFor(() => hot.length >= 1, 5000, 'the hot event');
    await new Promise((r) => setTimeout(r, 300));
    expect(hot.map((e) => [e.kind, e.topic, e.payload.value])).toEqual([['reading', 'rooms/b/temp', 55]]);

    // The link comes back: the alarms go out ahead of the backlog of readings that waited.
    proxy.refuse(false);
    const events = () => all.flat();
    await waitFor(() => events().filter((e) => e.kind === 'reading').length >= 308, 30_000, 'the backlog at the cloud');
    const alarms = events().filter((e) => e.kind === 'alarm');
    expect(alarms.map((a) => [a.topic, a.payload.rule, a.payload.key])).toEqual(
      expect.arrayContaining([
        ['alarms/door-then-heat', 'door-then-heat', 'a'],
        ['alarms/heartbeat-lost', 'heartbeat-lost', 'plant/p1/heartbeat'],
      ]),
    );
    expect(alarms).toHaveLength(2);
    const seqOf = (topic: string, value: unknown) => events().find((e) => e.topic === topic && e.payload.value === value)?.seq;
    expect(alarms.find((a) => a.payload.rule === 'door-then-heat')?.payload).toMatchObject({
      pattern: 'sequence',
      sourceSeq: seqOf('rooms/a/temp', 30),
      sourceTopic: 'rooms/a/temp',
    });
    // Ahead of the backlog: in the first batch read once they exist; at most the one batch that was
    // in flight when the link was down (retried as it was) goes before them.
    const batchOf = (e: WireEvent) => all.findIndex((b) => b.includes(e));
    for (const a of alarms) expect(batchOf(a)).toBeLessThanOrEqual(1);
    const derived = events().filter((e) => e.kind === 'derived');
    expect(derived.map((d) => [d.topic, d.payload])).toEqual([
      ['plant/a/meter/power', { power: 575, rule: 'power', sourceSeq: seqOf('plant/a/meter', undefined), sourceTopic: 'plant/a/meter' }],
    ]);
    // The other uplink got everything: every reading published, the derived event, the alarms.
    expect(events().filter((e) => e.kind === 'reading')).toHaveLength(308);

    // The dashboard's route and the metrics name each rule.
    const listed = (await (await fetch(`${gw.url}/api/rules`)).json()) as { rules: { name: string; kind: string; matches: number }[] };
    expect(listed.rules.map((r) => [r.name, r.kind, r.matches])).toEqual([
      ['power', 'derive', 1],
      ['heartbeat-lost', 'absence', 1],
      ['door-then-heat', 'sequence', 1],
    ]);
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(/sluice_rule_eval_seconds_total\{rule="door-then-heat"\} [0-9.e-]+/);
    expect(metrics).toContain('sluice_rule_matches_total{rule="heartbeat-lost"} 1');
    expect(metrics).toMatch(/sluice_uplink_where_total\{uplink="hot",result="skipped"\} \d+/);
  }, 60_000);
});
