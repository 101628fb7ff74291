/**
 * Republishing on the gateway's own broker: a pymodbus TCP slave polled by a real gateway, and
 * `mosquitto_sub` on the gateway's broker sees the readings (`republish:` on the driver) and a
 * window's aggregates (`republish:` on the analytics rule) and a rule's alarms (`republish:` on the rule). Republished messages are not ingested
 * again although `broker.ingest` takes every topic: the log holds no event from MQTT.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway, waitFor } from '../helpers/gateway.js';
import { type ModbusPeer, startModbusTcp } from '../drivers/field-peers.js';

describe('republish: driver readings and aggregates on the local broker', () => {
  let gw: TestGateway | undefined;
  let plc: ModbusPeer | undefined;
  let sub: ChildProcess | undefined;
  afterAll(async () => {
    sub?.kill();
    await gw?.stop();
    gw?.cleanup();
    await plc?.stop();
  });

  it('Modbus readings and window aggregates reach a local subscriber, and are not re-ingested', async () => {
    plc = await startModbusTcp([1]);
    gw = await startTestGateway({
      drivers: [
        {
          name: 'plc1',
          type: 'modbus-tcp',
          host: '127.0.0.1',
          port: plc.port,
          republish: { topic: 'plant/{driver}/{point}', qos: 0, retain: false },
          devices: [{ unitId: 1, interval: '200ms', points: [{ name: 'temp', table: 'holding', address: 15, type: 'uint16', scale: 0.1, unit: '°C', topic: 'sensors/tank/temp' }] }],
        },
      ],
      analytics: [
        {
          name: 'tank',
          match: 'sensors/tank/temp',
          field: 'value',
          detector: { type: 'threshold', high: 1000 },
          windows: [{ type: 'tumbling', size: '1s', aggregates: ['mean', 'max'] }],
          republish: { topic: 'agg/{rule}', qos: 1 },
        },
      ],
      rules: [{ name: 'tank-twice', count: { match: 'sensors/tank/temp', within: '10s', atLeast: 2 }, republish: { topic: 'alarm/{rule}' } }],
    } as never);
    const lines: string[] = [];
    sub = spawn('mosquitto_sub', ['-p', String(gw.mqttPort), '-t', 'plant/#', '-t', 'agg/#', '-t', 'alarm/#', '-v'], { stdio: ['ignore', 'pipe', 'pipe'] });
    sub.stdout?.on('data', (d) => lines.push(...String(d).split('\n').filter(Boolean)));
    const seen = (prefix: string) => lines.some((l) => l.startsWith(prefix));
    await waitFor(() => seen('plant/plc1/temp ') && seen('agg/tank ') && seen('alarm/tank-twice '), 15_000, 'republished messages');
    const alarm = JSON.parse(lines.find((l) => l.startsWith('alarm/tank-twice '))!.slice('alarm/tank-twice '.length));
    expect(alarm).toMatchObject({ rule: 'tank-twice', pattern: 'count' });

    const reading = JSON.parse(lines.find((l) => l.startsWith('plant/plc1/temp '))!.slice('plant/plc1/temp '.length));
    expect(reading).toMatchObject({ value: 21.6, unit: '°C' });
    const aggregate = JSON.parse(lines.find((l) => l.startsWith('agg/tank '))!.slice('agg/tank '.length));
    expect(aggregate).toMatchObject({ rule: 'tank', mean: 21.6, max: 21.6 });

    // Loop protection: nothing came back in through the broker's intake.
    const reader = gw.gateway.log.reader('check');
    const events = await reader.next(10_000, 16 * 1024 * 1024);
    expect(events.length).toBeGreaterThan(0);
    expect(events.filter((e) => (JSON.parse(e.json) as { source: string }).source === 'mqtt' || e.topic.startsWith('plant/') || e.topic.startsWith('agg/') || e.topic.startsWith('alarm/'))).toEqual([]);
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).not.toMatch(/sluice_ingest_events_total\{source="mqtt"\}/);
  });
});
