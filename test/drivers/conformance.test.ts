/**
 * The Driver contract (drivers/driver.ts), checked the same way against every field driver built
 * through the registry (`createDriver`), each against its real peer: readings in the contract's
 * shape, a status event and per-device health, back-pressure through `emit`, and a prompt `stop`
 * after which nothing more is emitted.
 */
import { SerialPort } from 'serialport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDriver } from '../../drivers/index.js';
import { type DriverConfig, driverSchema } from '../../drivers/schema.js';
import type { EventInput } from '../../src/core/event.js';
import { silentLogger } from '../../src/core/log.js';
import { tempDir } from '../helpers/peers.js';
import { eventually, type ModbusPeer, type Restartable, startModbusRtu, startModbusTcp, startSerialPair } from './field-peers.js';

const dir = tempDir('sluice-conformance-');
let tcp: ModbusPeer;
let rtuCable: Restartable;
let rtuSlave: Restartable;
let lineCable: Restartable;
let lineWriter: SerialPort;
let lineTimer: NodeJS.Timeout;

beforeAll(async () => {
  tcp = await startModbusTcp([1]);
  rtuCable = await startSerialPair(`${dir.path}/rtu-m`, `${dir.path}/rtu-s`);
  rtuSlave = await startModbusRtu(`${dir.path}/rtu-s`, 38400, [5]);
  lineCable = await startSerialPair(`${dir.path}/line-dev`, `${dir.path}/line-gw`);
  lineWriter = new SerialPort({ path: `${dir.path}/line-dev`, baudRate: 9600 });
  lineTimer = setInterval(() => lineWriter.write('t=20.5 rh=40\n'), 100);
});

afterAll(async () => {
  clearInterval(lineTimer);
  await new Promise<void>((r) => (lineWriter.isOpen ? lineWriter.close(() => r()) : r()));
  await Promise.allSettled([tcp?.stop(), rtuSlave?.stop()]);
  await Promise.allSettled([rtuCable?.stop(), lineCable?.stop()]);
  dir.cleanup();
});

const cases: [string, () => unknown][] = [
  [
    'modbus-tcp',
    () => ({
      name: 'c-tcp',
      type: 'modbus-tcp',
      host: '127.0.0.1',
      port: tcp.port,
      devices: [{ interval: '100ms', points: [{ name: 't', table: 'holding', address: 15, scale: 0.1, unit: '°C' }] }],
    }),
  ],
  [
    'modbus-rtu',
    () => ({
      name: 'c-rtu',
      type: 'modbus-rtu',
      path: `${dir.path}/rtu-m`,
      baudRate: 38400,
      devices: [{ unitId: 5, interval: '100ms', points: [{ name: 'n', table: 'input', address: 0 }] }],
    }),
  ],
  ['serial', () => ({ name: 'c-serial', type: 'serial', path: `${dir.path}/line-gw`, topic: 'c/line', units: { t: '°C' } })],
  ['system', () => ({ name: 'c-system', type: 'system', interval: '100ms' })],
  ['simulator', () => ({ name: 'c-sim', type: 'simulator', interval: '100ms', seed: 1, sensors: [{ topic: 'c/sim' }] })],
];

describe.each(cases)('Driver contract: %s', (type, makeConfig) => {
  it('emits contract readings, a status event and health, and stops promptly', async () => {
    const config = driverSchema.parse(makeConfig()) as DriverConfig;
    const driver = await createDriver(config);
    expect(driver.name).toBe(config.name);
    expect(driver.type).toBe(type);

    const events: EventInput[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const t0 = Date.now();
    await driver.start({
      gatewayId: 'gw',
      logger: silentLogger,
      dataDir: dir.path,
      // A slow store: the driver must wait for it (back-pressure), not pile up concurrent emits.
      emit: async (batch) => {
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        await new Promise((r) => setTimeout(r, 30));
        events.push(...batch);
        inFlight--;
      },
    });
    expect(Date.now() - t0).toBeLessThan(1000); // start does not wait for the device

    await eventually(() => events.some((e) => e.kind === 'status') && events.filter((e) => e.kind === 'reading').length >= 3, 8000, 'readings and a status event');
    const readings = events.filter((e) => e.kind === 'reading');
    for (const r of readings) {
      expect(r.source).toBe(`${type}:${config.name}`);
      expect(typeof r.topic).toBe('string');
      expect(typeof r.ts).toBe('number');
      expect(r.payload).toHaveProperty('value');
      expect(r.payload).not.toHaveProperty('quality');
    }
    const status = events.find((e) => e.kind === 'status');
    expect(status?.topic).toBe(`sluice/drivers/${config.name}/status`);
    expect(status?.payload).toMatchObject({ driver: config.name, type, state: 'up', previous: 'starting' });
    expect(maxInFlight).toBe(1);

    const health = driver.health();
    expect(health).toMatchObject({ name: config.name, type });
    expect(health.devices.length).toBeGreaterThan(0);
    for (const d of health.devices) {
      expect(d.state).toBe('up');
      expect(d.lastSuccessTs).toBeGreaterThanOrEqual(t0);
      expect(d.consecutiveFailures).toBe(0);
      expect(d.failures).toEqual({});
      expect(d.lastReading?.ts).toBeGreaterThanOrEqual(t0);
    }

    const stopAt = Date.now();
    await driver.stop(Date.now() + 1000);
    expect(Date.now() - stopAt).toBeLessThan(1100);
    expect(driver.health().devices.every((d) => d.state === 'stopped')).toBe(true);
    const after = events.length;
    await new Promise((r) => setTimeout(r, 300));
    expect(events.length).toBe(after);
  });
});
