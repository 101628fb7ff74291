/**
 * Device writes end to end: a gateway reads a real OPC UA server by subscription and a real pymodbus
 * device and delivers both to the cloud Mosquitto (127.0.0.1:1883, a topic prefix of its own); an
 * anomaly on the OPC UA temperature makes an analytics rule write the Modbus setpoint, which the
 * slave then holds, and the audit event reaches the cloud; an MQTT user with the ACL writes and
 * gets a result, writes outside the limits and to undeclared points are refused with audit events,
 * and a user without the ACL cannot write at all. The OPC UA server restarts mid-run and readings
 * resume without a gateway restart.
 */
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import mqtt from 'mqtt';
import type { ModbusRTU } from 'modbus-serial/ModbusRTU.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema.js';
import { hashPassword } from '../../src/auth/password.js';
import { signCommand } from '../../src/fleet/command.js';
import { generateKeyPair, parsePrivateKey } from '../../src/fleet/keys.js';
import { type ModbusPeer, startModbusTcp } from '../drivers/field-peers.js';
import { startUaServer, type UaServer } from '../drivers/opcua-server.js';
import { startTestGateway, type TestGateway, waitFor } from '../helpers/gateway.js';
import { freePort, tempDir } from '../helpers/peers.js';

const ModbusClient = createRequire(import.meta.url)('modbus-serial') as typeof ModbusRTU;

interface WireEvent {
  topic: string;
  payload: Record<string, unknown>;
  kind: string;
  source: string;
  deviceTs?: number;
}

async function slaveRegister(port: number, address: number): Promise<number> {
  const c = new ModbusClient();
  await c.connectTCP('127.0.0.1', { port });
  c.setID(1);
  try {
    return (await c.readHoldingRegisters(address, 1)).data[0];
  } finally {
    c.close(() => undefined);
  }
}

describe('device writes end to end: OPC UA + Modbus in, anomaly → write, MQTT writes under ACLs, audit to the cloud', () => {
  const dir = tempDir('sluice-writes-');
  const prefix = `sluice-e2e-${randomUUID().slice(0, 8)}`;
  let ua: UaServer;
  let uaPort: number;
  let plc: ModbusPeer;
  let gw: TestGateway;
  let cloud: mqtt.MqttClient;
  const received: WireEvent[] = [];
  const fleetResults: { id: string; ok: boolean; error?: string; result?: Record<string, unknown> }[] = [];
  const keys = generateKeyPair();

  beforeAll(async () => {
    uaPort = await freePort();
    ua = await startUaServer({ port: uaPort, pkiDir: join(dir.path, 'ua-server'), tickMs: 200 });
    plc = await startModbusTcp([1]);
    cloud = await mqtt.connectAsync('mqtt://127.0.0.1:1883', { clientId: `${prefix}-sub` });
    await cloud.subscribeAsync(`${prefix}/gw-writes/events`, { qos: 1 });
    await cloud.subscribeAsync(`${prefix}/gw-writes/cmd/result`, { qos: 1 });
    cloud.on('message', (t, p) => {
      if (t.endsWith('/cmd/result')) fleetResults.push(JSON.parse(p.toString()));
      else received.push(...(JSON.parse(p.toString()).events as WireEvent[]));
    });
    gw = await startTestGateway({
      gateway: { id: 'gw-writes', dataDir: join(dir.path, 'gw') },
      broker: {
        allowAnonymous: false,
        users: [
          { username: 'operator', passwordHash: await hashPassword('op-pass'), publish: ['sluice/write/plc-mb/#'], subscribe: ['sluice/write/#'] },
          { username: 'sensor', passwordHash: await hashPassword('sensor-pass'), publish: ['plant/#'], subscribe: ['sluice/write/#'] },
        ],
      },
      drivers: [
        {
          name: 'plc-ua',
          type: 'opcua',
          endpoint: `opc.tcp://127.0.0.1:${uaPort}`,
          security: { mode: 'None' },
          publishingInterval: '200ms',
          nodes: [
            { nodeId: 'ns=1;s=Temperature', topic: 'plant/ua/temp', samplingInterval: '100ms' },
            { nodeId: 'ns=1;s=Broken', topic: 'plant/ua/broken' },
          ],
        },
        {
          name: 'plc-mb',
          type: 'modbus-tcp',
          host: '127.0.0.1',
          port: plc.port,
          devices: [
            {
              unitId: 1,
              interval: '500ms',
              points: [
                { name: 'setpoint', table: 'holding', address: 10, type: 'uint16', topic: 'plant/setpoint', writable: { min: 0, max: 100 } },
                { name: 'alarm', table: 'holding', address: 30, type: 'uint16', topic: 'plant/alarm' },
              ],
            },
          ],
        },
      ],
      analytics: [
        {
          name: 'overheat',
          match: 'plant/ua/temp',
          detector: { type: 'threshold', high: 80 },
          actions: [{ write: { driver: 'plc-mb', point: 'setpoint', value: 7 }, minInterval: '10s' }],
        },
      ],
      uplinks: [{ name: 'cloud', type: 'mqtt', url: 'mqtt://127.0.0.1:1883', topicPrefix: prefix }],
      fleet: { uplink: 'cloud', topicPrefix: prefix, trustedKeys: [{ keyId: 'ops', publicKey: keys.publicKey }] },
    } as unknown as Partial<ConfigInput>);
  }, 60_000);

  afterAll(async () => {
    await gw?.stop();
    await cloud?.endAsync();
    await Promise.allSettled([ua?.stop(), plc?.stop()]);
    gw?.cleanup();
    dir.cleanup();
  });

  const at = (topic: string) => received.filter((e) => e.topic === topic);
  const audits = (point: string) => at(`sluice/audit/write/plc-mb/${point}`);

  it('delivers OPC UA readings (by subscription, with deviceTs and quality) and Modbus readings to the cloud', async () => {
    await waitFor(() => at('plant/ua/temp').length >= 3 && at('plant/setpoint').length && at('plant/ua/broken').length, 20_000, 'readings at the cloud');
    const t = at('plant/ua/temp').at(-1)!;
    expect(t).toMatchObject({ kind: 'reading', source: 'opcua:plc-ua' });
    expect(typeof t.payload.value).toBe('number');
    expect(t.deviceTs).toBeGreaterThan(Date.now() - 60_000);
    expect(at('plant/ua/broken').at(-1)!.payload).toMatchObject({ quality: 'bad', status: 'BadSensorFailure' });
    expect(at('plant/setpoint').at(-1)!.payload).toEqual({ value: await slaveRegister(plc.port, 10) });
  }, 30_000);

  it('an anomaly on the temperature writes the Modbus setpoint; the slave holds it and the audit reaches the cloud', async () => {
    ua.set('Temperature', 95);
    await waitFor(() => at('plant/ua/temp').some((e) => e.payload.value === 95), 10_000, 'the hot reading');
    await waitFor(() => received.some((e) => e.kind === 'anomaly'), 10_000, 'the anomaly');
    await waitFor(async () => (await slaveRegister(plc.port, 10)) === 7, 20_000, 'the setpoint written by the rule');
    await waitFor(() => audits('setpoint').length, 10_000, 'the audit event at the cloud');
    expect(audits('setpoint')[0]).toMatchObject({
      kind: 'audit',
      payload: { driver: 'plc-mb', point: 'setpoint', value: 7, outcome: 'accepted', requester: 'analytics:overheat' },
    });
    expect(audits('setpoint')[0].payload.reason).toMatch(/anomaly on plant\/ua\/temp/);
    await waitFor(() => at('plant/setpoint').some((e) => e.payload.value === 7), 10_000, 'the new setpoint read back by polling');
  }, 40_000);

  it('an MQTT user with the ACL writes and gets a result; outside the limits and undeclared points are refused and audited', async () => {
    const op = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw.mqttPort}`, { username: 'operator', password: 'op-pass', clientId: `${prefix}-op` });
    try {
      const results: { topic: string; body: { ok: boolean; error?: string } }[] = [];
      await op.subscribeAsync('sluice/write/+/+/result', { qos: 1 });
      op.on('message', (topic, p) => results.push({ topic, body: JSON.parse(p.toString()) }));
      await op.publishAsync('sluice/write/plc-mb/setpoint', JSON.stringify({ value: 42, reason: 'operator test' }), { qos: 1 });
      await waitFor(() => results.length >= 1, 10_000, 'the result');
      expect(results[0]).toEqual({ topic: 'sluice/write/plc-mb/setpoint/result', body: { ok: true } });
      expect(await slaveRegister(plc.port, 10)).toBe(42);

      await op.publishAsync('sluice/write/plc-mb/setpoint', JSON.stringify({ value: 150, reason: 'too much' }), { qos: 1 });
      await op.publishAsync('sluice/write/plc-mb/alarm', JSON.stringify({ value: 1, reason: 'not writable' }), { qos: 1 });
      await waitFor(() => results.length >= 3, 10_000, 'two refusals');
      expect(results[1].body).toEqual({ ok: false, error: 'value 150 refused for plc-mb/setpoint: above the maximum 100' });
      expect(results[2]).toEqual({
        topic: 'sluice/write/plc-mb/alarm/result',
        body: { ok: false, error: 'point "alarm" of driver "plc-mb" is not declared writable' },
      });
      expect(await slaveRegister(plc.port, 10)).toBe(42);
      await waitFor(() => audits('alarm').length && audits('setpoint').some((e) => e.payload.value === 150), 10_000, 'refusal audits at the cloud');
      expect(audits('setpoint').find((e) => e.payload.value === 150)!.payload).toMatchObject({
        outcome: 'refused',
        requester: 'mqtt:operator',
        reason: 'too much',
      });
      expect(audits('alarm')[0].payload).toMatchObject({ outcome: 'refused', requester: 'mqtt:operator' });
      expect(audits('setpoint').find((e) => e.payload.value === 42)!.payload).toMatchObject({ outcome: 'accepted', requester: 'mqtt:operator' });
      const metrics = await (await fetch(`${gw.url}/metrics`)).text();
      expect(metrics).toMatch(/sluice_device_writes_total\{outcome="refused"\} [2-9]/);
      expect(metrics).toMatch(/sluice_driver_device_up\{driver="plc-ua",type="opcua",device="opc.tcp:\/\/127.0.0.1:\d+"\} 1/);
    } finally {
      await op.endAsync();
    }
  }, 40_000);

  it('an MQTT user without the write ACL cannot write: the broker refuses the publish, nothing is written', async () => {
    const sensor = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw.mqttPort}`, {
      username: 'sensor',
      password: 'sensor-pass',
      clientId: `${prefix}-sensor`,
      reconnectPeriod: 0,
    });
    const closed = new Promise<void>((r) => sensor.once('close', () => r()));
    sensor.publish('sluice/write/plc-mb/setpoint', JSON.stringify({ value: 13 }), { qos: 1 });
    await closed;
    await new Promise((r) => setTimeout(r, 500));
    expect(await slaveRegister(plc.port, 10)).toBe(42);
    expect(audits('setpoint').some((e) => e.payload.value === 13)).toBe(false);
    sensor.end(true);
  }, 20_000);

  it('a signed fleet command device.write takes the same path; an expired or replayed one writes nothing', async () => {
    const priv = parsePrivateKey(keys.privatePem);
    const send = (cmd: object) => cloud.publishAsync(`${prefix}/gw-writes/cmd`, JSON.stringify(cmd), { qos: 1 });
    const body = { driver: 'plc-mb', point: 'setpoint', value: 55, reason: 'fleet test' };
    const cmd = signCommand(priv, { type: 'device.write', device: 'gw-writes', keyId: 'ops', body });
    await send(cmd);
    await waitFor(() => fleetResults.find((r) => r.id === cmd.id), 15_000, 'the fleet result');
    expect(fleetResults.find((r) => r.id === cmd.id)).toMatchObject({ ok: true, result: { outcome: 'accepted' } });
    expect(await slaveRegister(plc.port, 10)).toBe(55);
    await waitFor(() => audits('setpoint').find((e) => e.payload.requester === `fleet:${cmd.id}`), 10_000, 'the fleet audit');

    const over = signCommand(priv, { type: 'device.write', device: 'gw-writes', keyId: 'ops', body: { ...body, value: 101 } });
    const expired = signCommand(priv, { type: 'device.write', device: 'gw-writes', keyId: 'ops', body: { ...body, value: 66 }, issuedAt: Date.now() - 120_000, lifetimeMs: 60_000 });
    await send(over);
    await send(expired);
    await send(cmd); // a replay
    await waitFor(() => fleetResults.length >= 4, 15_000, 'three more fleet results');
    expect(fleetResults.find((r) => r.id === over.id)).toMatchObject({ ok: false, error: expect.stringMatching(/write refused: value 101 refused .*above the maximum 100/) });
    expect(fleetResults.find((r) => r.id === expired.id)).toMatchObject({ ok: false, error: expect.stringMatching(/expired/) });
    expect(fleetResults.filter((r) => r.id === cmd.id).at(-1)).toMatchObject({ ok: false, error: expect.stringMatching(/already|replay|seen/i) });
    expect(await slaveRegister(plc.port, 10)).toBe(55);
  }, 40_000);

  it('removes and adds the OPC UA driver at run time (hot reconfiguration)', async () => {
    const full = gw.gateway.config;
    await gw.gateway.reconfigure({ ...full, drivers: full.drivers.filter((d) => d.name !== 'plc-ua') });
    expect(gw.gateway.status().drivers.map((d) => d.name)).toEqual(['plc-mb']);
    const before = at('plant/ua/temp').length;
    await gw.gateway.reconfigure(full);
    await waitFor(() => at('plant/ua/temp').length > before, 20_000, 'readings of the re-added driver');
    expect(gw.gateway.status().drivers.find((d) => d.name === 'plc-ua')?.devices[0].state).toBe('up');
  }, 40_000);

  it('after the OPC UA server restarts, readings resume without a gateway restart', async () => {
    await ua.stop();
    await waitFor(() => at('sluice/drivers/plc-ua/status').some((e) => e.payload.state !== 'up'), 20_000, 'the loss in a status event');
    const before = at('plant/ua/temp').length;
    ua = await startUaServer({ port: uaPort, pkiDir: join(dir.path, 'ua-server'), tickMs: 200 });
    await waitFor(() => at('plant/ua/temp').length > before + 3, 45_000, 'readings after the restart');
    await waitFor(() => at('sluice/drivers/plc-ua/status').at(-1)?.payload.state === 'up', 10_000, 'up again');
  }, 90_000);
});
