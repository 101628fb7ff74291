/**
 * The field gateway as a new user would try it: one gateway config with a Modbus TCP device
 * (points of several types), an RTU bus with two devices, and an NMEA GPS on a serial line. The
 * readings arrive scaled at the configured rates and reach the MQTT uplink (a real Mosquitto
 * standing in for the cloud); killing and restarting the pymodbus server shows the device go
 * `down` in /api/status and come back by itself; drivers are added and removed at run time.
 */

import mqtt from 'mqtt';
import { SerialPort } from 'serialport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nmeaSentence } from '../../drivers/serial/parse.js';
import { validateConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { startTestGateway, type TestGateway, waitFor } from '../helpers/gateway.js';
import { type Peer, startMosquitto, tempDir } from '../helpers/peers.js';
import { type ModbusPeer, type Restartable, startModbusRtu, startModbusTcp, startSerialPair } from './field-peers.js';

interface WireEvent {
  topic: string;
  payload: Record<string, unknown>;
  kind: string;
  source: string;
  deviceTs?: number;
  ts: number;
}

describe('field drivers in a running gateway, to the uplink', () => {
  const data = tempDir('sluice-field-');
  const lines = tempDir('sluice-field-tty-');
  let cloud: Peer;
  let sub: mqtt.MqttClient;
  let plc: ModbusPeer;
  let rtuCable: Restartable;
  let rtuSlave: Restartable;
  let gpsCable: Restartable;
  let gpsWriter: SerialPort;
  let gpsTimer: NodeJS.Timeout | undefined;
  let gw: TestGateway;
  const received: WireEvent[] = [];

  const drivers = () => [
    {
      name: 'plc1',
      type: 'modbus-tcp' as const,
      host: '127.0.0.1',
      port: plc.port,
      devices: [
        {
          unitId: 1,
          interval: '250ms',
          timeout: '300ms',
          retries: 0,
          downAfter: 2,
          maxBackoff: '500ms',
          points: [
            {
              name: 'tank_temp',
              table: 'holding' as const,
              address: 15,
              scale: 0.1,
              unit: '°C',
              topic: 'plant/tank/temp',
            },
            {
              name: 'pressure',
              table: 'holding' as const,
              address: 6,
              type: 'float32' as const,
              unit: 'bar',
              topic: 'plant/tank/pressure',
            },
            {
              name: 'energy',
              table: 'holding' as const,
              address: 4,
              type: 'uint32' as const,
              wordOrder: 'little' as const,
              scale: 0.001,
              unit: 'kWh',
              topic: 'plant/energy',
            },
            { name: 'pump_on', table: 'coil' as const, address: 0, topic: 'plant/pump/on' },
          ],
        },
      ],
    },
    {
      name: 'bus1',
      type: 'modbus-rtu' as const,
      path: `${lines.path}/rtu-master`,
      baudRate: 19200,
      devices: [
        {
          unitId: 3,
          interval: '500ms',
          points: [{ name: 't', table: 'holding' as const, address: 15, scale: 0.1, unit: '°C', topic: 'line/3/temp' }],
        },
        {
          unitId: 4,
          interval: '500ms',
          points: [{ name: 't', table: 'input' as const, address: 0, topic: 'line/4/count' }],
        },
      ],
    },
    {
      name: 'gps',
      type: 'serial' as const,
      path: `${lines.path}/gps-gateway`,
      format: 'nmea' as const,
      topic: 'site/gps',
    },
  ];

  beforeAll(async () => {
    cloud = await startMosquitto();
    sub = await mqtt.connectAsync(cloud.url, { clientId: 'field-cloud-sub' });
    await sub.subscribeAsync('sluice/gw-field/events', { qos: 1 });
    sub.on('message', (_t, payload) => received.push(...(JSON.parse(payload.toString()).events as WireEvent[])));
    plc = await startModbusTcp([1]);
    rtuCable = await startSerialPair(`${lines.path}/rtu-master`, `${lines.path}/rtu-slave`);
    rtuSlave = await startModbusRtu(`${lines.path}/rtu-slave`, 19200, [3, 4]);
    gpsCable = await startSerialPair(`${lines.path}/gps-device`, `${lines.path}/gps-gateway`);
    gpsWriter = new SerialPort({ path: `${lines.path}/gps-device`, baudRate: 9600 });
    let second = 0;
    gpsTimer = setInterval(() => {
      second = (second + 1) % 60;
      const hhmmss = `1200${String(second).padStart(2, '0')}`;
      gpsWriter.write(`${nmeaSentence(`GPRMC,${hhmmss},A,4807.038,N,01131.000,E,000.5,054.7,241126,,`)}\r\n`);
      gpsWriter.write(`${nmeaSentence(`GPGGA,${hhmmss},4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,`)}\r\n`);
    }, 200);
    gw = await startTestGateway({
      gateway: { id: 'gw-field', dataDir: data.path },
      drivers: drivers(),
      uplinks: [{ name: 'cloud', type: 'mqtt', url: cloud.url, topicPrefix: 'sluice' }],
    } as Partial<ConfigInput>);
  });

  afterAll(async () => {
    clearInterval(gpsTimer);
    await gw?.stop();
    await new Promise<void>((r) => (gpsWriter?.isOpen ? gpsWriter.close(() => r()) : r()));
    await sub?.endAsync();
    await Promise.allSettled([cloud?.stop(), plc?.stop(), rtuSlave?.stop()]);
    await Promise.allSettled([rtuCable?.stop(), gpsCable?.stop()]);
    gw?.cleanup();
    lines.cleanup();
  });

  const latest = (topic: string) => received.filter((e) => e.topic === topic).at(-1);
  const count = (topic: string) => received.filter((e) => e.topic === topic).length;
  const status = async () =>
    (await (await fetch(`${gw.url}/api/status`)).json()) as {
      drivers: { name: string; devices: { device: string; state: string }[] }[];
    };
  const deviceState = async (driver: string, device: string) =>
    (await status()).drivers.find((d) => d.name === driver)?.devices.find((d) => d.device === device)?.state;

  it('delivers scaled readings of Modbus TCP, two RTU units and an NMEA GPS at their rates', async () => {
    await waitFor(
      () =>
        ['plant/tank/temp', 'plant/pump/on', 'line/3/temp', 'line/4/count', 'site/gps/lat', 'site/gps/speed'].every((t) =>
          latest(t),
        ),
      15_000,
      'readings of every driver at the cloud broker',
    );
    expect(latest('plant/tank/temp')?.payload).toEqual({ value: 21.6, unit: '°C' });
    expect(latest('plant/tank/pressure')?.payload).toEqual({ value: 21.5, unit: 'bar' });
    expect(latest('plant/energy')?.payload).toEqual({ value: 3000000, unit: 'kWh' });
    expect(latest('plant/pump/on')?.payload).toEqual({ value: true });
    expect(latest('line/3/temp')?.payload).toEqual({ value: 21.8, unit: '°C' });
    expect(latest('line/4/count')?.payload).toEqual({ value: 1004 });
    expect(latest('site/gps/lat')?.payload).toEqual({ value: 48.1173, unit: 'deg' });
    expect(latest('site/gps/lon')?.payload).toEqual({ value: 11.5166667, unit: 'deg' });
    expect(latest('site/gps/fix')?.payload).toEqual({ value: 1 });
    expect(latest('site/gps/speed')?.payload).toEqual({ value: 0.5, unit: 'kn' });
    // The satellite time, dated by the RMC sentence (24 Nov 2026, 12:00:ss).
    expect(latest('site/gps/lat')?.deviceTs).toBeGreaterThanOrEqual(Date.UTC(2026, 10, 24, 12, 0, 0));
    expect(latest('site/gps/lat')?.deviceTs).toBeLessThan(Date.UTC(2026, 10, 24, 12, 1, 0));
    expect(latest('plant/tank/temp')?.source).toBe('modbus-tcp:plc1');

    // Rates: over a 2 s window, the 250 ms TCP device polls about 8 times, the 500 ms RTU units about 4.
    const [tcp0, rtu0] = [count('plant/tank/temp'), count('line/3/temp')];
    await new Promise((r) => setTimeout(r, 2000));
    const [tcp, rtu] = [count('plant/tank/temp') - tcp0, count('line/3/temp') - rtu0];
    expect(tcp).toBeGreaterThanOrEqual(4);
    expect(tcp).toBeLessThanOrEqual(10);
    expect(rtu).toBeGreaterThanOrEqual(2);
    expect(rtu).toBeLessThanOrEqual(6);

    expect(await deviceState('plc1', 'unit-1')).toBe('up');
    expect(await deviceState('bus1', 'unit-3')).toBe('up');
    expect(await deviceState('gps', `${lines.path}/gps-gateway`)).toBe('up');
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toContain('sluice_driver_device_up{driver="plc1",type="modbus-tcp",device="unit-1"} 1');
    expect(metrics).toMatch(/sluice_driver_device_last_success_timestamp_seconds\{driver="bus1",device="unit-4"\} \d+/);
  });

  it('shows the PLC down while its server is dead and up again after, without a restart', async () => {
    await plc.kill();
    await waitFor(async () => (await deviceState('plc1', 'unit-1')) === 'down', 10_000, 'plc1 down in /api/status');
    await waitFor(() => latest('plant/tank/temp')?.payload.quality === 'stale', 10_000, 'a stale reading at the cloud');
    // The other drivers are not affected: the RTU units' readings keep reaching the cloud while
    // the PLC is down (awaited, not counted across the restart: a quick restart can fall between
    // two of their 500 ms polls).
    const rtuBefore = count('line/3/temp');
    await waitFor(() => count('line/3/temp') > rtuBefore, 5_000, 'RTU readings while the PLC is down');
    await plc.start();
    await waitFor(async () => (await deviceState('plc1', 'unit-1')) === 'up', 10_000, 'plc1 up again');
    await waitFor(
      () => latest('plant/tank/temp')?.payload.quality === undefined,
      10_000,
      'fresh readings at the cloud',
    );
    const states = received
      .filter((e) => e.kind === 'status' && e.topic === 'sluice/drivers/plc1/status')
      .map((e) => e.payload.state);
    expect(states).toEqual(expect.arrayContaining(['down', 'up']));
  });

  it('adds and removes drivers at run time', async () => {
    const base = {
      gateway: { id: 'gw-field', dataDir: data.path },
      uplinks: [{ name: 'cloud', type: 'mqtt', url: cloud.url, topicPrefix: 'sluice' }],
    };
    const next = validateConfig({
      ...base,
      broker: { listeners: [{ host: '127.0.0.1', port: gw.mqttPort }] },
      http: { host: '127.0.0.1', port: gw.httpPort },
      buffer: { commitInterval: 2 },
      drivers: [...drivers().filter((d) => d.name !== 'gps'), { name: 'sys', type: 'system', interval: '200ms' }],
    });
    await gw.gateway.reconfigure(next);
    await waitFor(() => latest('sluice/system/load1'), 10_000, 'system readings');
    const names = (await status()).drivers.map((d) => d.name).sort();
    expect(names).toEqual(['bus1', 'plc1', 'sys']);
    // The GPS port is closed: its pty can be reopened exclusively by someone else.
    const probe = new SerialPort({ path: `${lines.path}/gps-gateway`, baudRate: 9600, lock: true, autoOpen: false });
    await new Promise<void>((resolve, reject) => probe.open((err) => (err ? reject(err) : resolve())));
    await new Promise<void>((r) => probe.close(() => r()));
  });
});
