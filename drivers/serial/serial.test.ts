import { SerialPort } from 'serialport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventInput } from '../../src/core/event.js';
import { silentLogger } from '../../src/core/log.js';
import { eventually, type Restartable, startSerialPair } from '../../test/drivers/field-peers.js';
import { tempDir } from '../../test/helpers/peers.js';
import { SerialDriver } from './index.js';
import { nmeaSentence as nmea } from './parse.js';
import { serialSchema } from './schema.js';

async function openWriter(path: string): Promise<SerialPort> {
  const port = new SerialPort({ path, baudRate: 9600, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  return port;
}

function write(port: SerialPort, data: string | Buffer): Promise<void> {
  return new Promise((resolve, reject) => port.write(data, (err) => (err ? reject(err) : port.drain(() => resolve()))));
}

function closeWriter(port: SerialPort): Promise<void> {
  return new Promise((resolve) => (port.isOpen ? port.close(() => resolve()) : resolve()));
}

describe('serial driver over a socat pair', () => {
  const dir = tempDir('sluice-serial-');
  const device = `${dir.path}/gps-device`;
  const gateway = `${dir.path}/gps-gateway`;
  let cable: Restartable;
  beforeAll(async () => {
    cable = await startSerialPair(device, gateway);
  });
  afterAll(async () => {
    await cable?.stop();
    dir.cleanup();
  });

  it('reads NMEA, counts garbage, bad checksums and over-long lines, and survives an unplug', async () => {
    const config = serialSchema.parse({
      name: 'gps',
      type: 'serial',
      path: gateway,
      format: 'nmea',
      topic: 'site/gps',
      maxLineBytes: 200,
      maxBackoff: '300ms',
    });
    const events: EventInput[] = [];
    const driver = new SerialDriver(config);
    await driver.start({ gatewayId: 'gw', logger: silentLogger, emit: async (b) => void events.push(...b) });
    let writer = await openWriter(device);
    try {
      await eventually(() => driver.health().devices[0].failures.open === undefined, 3000, 'port open');
      const rmc = nmea('GPRMC,081836,A,3751.65,S,14507.36,E,000.0,360.0,130998,011.3,E');
      const gga = nmea('GPGGA,081837,3751.65,S,14507.36,E,1,05,1.5,280.2,M,-34.0,M,,');
      await write(
        writer,
        Buffer.concat([
          Buffer.from('\x00\xff\xfe\x01garbage\r\n', 'latin1'),
          Buffer.from(`${rmc}\r\n`),
          Buffer.from(`${gga.slice(0, -2)}FF\r\n`), // bad checksum
          Buffer.from(`${nmea('GPGSV,1,1,01,03,03,111,00')}\r\n`),
          Buffer.from(`$GPGGA,${'9'.repeat(300)}\r\n`),
          Buffer.from(`${gga}\r\n`),
        ]),
      );
      await eventually(() => events.some((e) => e.topic === 'site/gps/altitude'), 5000, 'the GGA readings');
      const readings = events.filter((e) => e.kind === 'reading').map((e) => [e.topic, e.payload, e.deviceTs]);
      const rmcTs = Date.UTC(1998, 8, 13, 8, 18, 36);
      const ggaTs = Date.UTC(1998, 8, 13, 8, 18, 37);
      // Garbage, the bad checksum, GSV and the over-long line made no reading.
      expect(readings).toEqual([
        ['site/gps/lat', { value: -37.8608333, unit: 'deg' }, rmcTs],
        ['site/gps/lon', { value: 145.1226667, unit: 'deg' }, rmcTs],
        ['site/gps/speed', { value: 0, unit: 'kn' }, rmcTs],
        ['site/gps/course', { value: 360, unit: 'deg' }, rmcTs],
        ['site/gps/fix', { value: 1 }, ggaTs],
        ['site/gps/satellites', { value: 5 }, ggaTs],
        ['site/gps/lat', { value: -37.8608333, unit: 'deg' }, ggaTs],
        ['site/gps/lon', { value: 145.1226667, unit: 'deg' }, ggaTs],
        ['site/gps/altitude', { value: 280.2, unit: 'm' }, ggaTs],
        ['site/gps/hdop', { value: 1.5 }, ggaTs],
      ]);
      let h = driver.health().devices[0];
      expect(h.state).toBe('up');
      expect(h.failures).toEqual({ garbage: 1, checksum: 1, 'too-long': 1 });

      // Unplug: the cable goes away; the driver reports down and keeps trying.
      await closeWriter(writer);
      await cable.kill();
      await eventually(() => driver.health().devices[0].state === 'down', 5000, 'device down');
      h = driver.health().devices[0];
      expect((h.failures.disconnected ?? 0) + (h.failures.open ?? 0)).toBeGreaterThan(0);
      // The last fix is re-emitted once, marked stale.
      const stale = events.filter((e) => (e.payload as { quality?: string }).quality === 'stale');
      expect(stale.map((e) => e.topic).sort()).toEqual(
        ['altitude', 'course', 'fix', 'hdop', 'lat', 'lon', 'satellites', 'speed'].map((q) => `site/gps/${q}`),
      );
      expect(stale.find((e) => e.topic === 'site/gps/lat')?.payload).toEqual({ value: -37.8608333, unit: 'deg', quality: 'stale' });
      await new Promise((r) => setTimeout(r, 400)); // a few failed reopen attempts

      // Replug: a new pty behind the same path; readings flow again without restarting the driver.
      await cable.start();
      writer = await openWriter(device);
      const before = events.length;
      await eventually(
        async () => {
          await write(writer, `${gga}\r\n`);
          return events.slice(before).some((e) => e.topic === 'site/gps/fix');
        },
        8000,
        'a reading after the replug',
      );
      expect(driver.health().devices[0].state).toBe('up');
      expect(events.at(-1)?.payload).not.toHaveProperty('quality');
      const states = events.filter((e) => e.kind === 'status').map((e) => (e.payload as { state: string }).state);
      expect(states).toEqual(expect.arrayContaining(['up', 'down']));
      expect(states.at(-1)).toBe('up');
    } finally {
      await closeWriter(writer);
      const t0 = Date.now();
      await driver.stop(Date.now() + 1000);
      expect(Date.now() - t0).toBeLessThan(1100);
    }
  });

  it('json-lines: a device that goes quiet for staleAfter is degraded, its last value stale', async () => {
    // A cable of its own: nothing left over from another test in its buffers.
    const jcable = await startSerialPair(`${dir.path}/j-dev`, `${dir.path}/j-gw`);
    const config = serialSchema.parse({ name: 'j', type: 'serial', path: `${dir.path}/j-gw`, format: 'json-lines', topic: 'lab/j', staleAfter: '300ms' });
    const events: EventInput[] = [];
    const driver = new SerialDriver(config);
    await driver.start({ gatewayId: 'gw', logger: silentLogger, emit: async (b) => void events.push(...b) });
    const writer = await openWriter(`${dir.path}/j-dev`);
    try {
      await eventually(() => driver.health().devices[0].failures.open === undefined, 3000, 'port open');
      await write(writer, '{"value": 4.2, "unit": "mA", "ts": 1700000000}\n{"value": \n');
      await eventually(() => driver.health().devices[0].state === 'degraded', 5000, 'degraded after silence');
      expect(events.filter((e) => e.kind === 'reading').map((e) => [e.payload, e.deviceTs])).toEqual([
        [{ value: 4.2, unit: 'mA', ts: 1700000000 }, 1_700_000_000_000],
        [{ value: 4.2, unit: 'mA', ts: 1700000000, quality: 'stale' }, 1_700_000_000_000],
      ]);
      expect(driver.health().devices[0].failures).toEqual({ 'bad-json': 1 });
      expect(driver.health().devices[0].lastError).toMatch(/no valid record/);
      await write(writer, '{"value": 4.3}\n');
      await eventually(() => driver.health().devices[0].state === 'up', 3000, 'up again');
    } finally {
      await closeWriter(writer);
      await driver.stop(Date.now() + 1000);
      await jcable.stop();
    }
  });

  it('reads key=value lines with units; a missing port is down and counted, not fatal', async () => {
    // A cable of its own: nothing left over from another test in its buffers.
    const kvcable = await startSerialPair(`${dir.path}/kv-dev`, `${dir.path}/kv-gw`);
    const config = serialSchema.parse({
      name: 'meter',
      type: 'serial',
      path: `${dir.path}/kv-gw`,
      topic: 'lab/meter',
      units: { t: '°C' },
    });
    const events: EventInput[] = [];
    const driver = new SerialDriver(config);
    await driver.start({ gatewayId: 'gw', logger: silentLogger, emit: async (b) => void events.push(...b) });
    const writer = await openWriter(`${dir.path}/kv-dev`);
    try {
      await eventually(() => driver.health().devices[0].failures.open === undefined, 3000, 'port open');
      await write(writer, 't=21.5 rh=40\nbroken line here\nt=21.6 rh=41\n');
      await eventually(() => events.filter((e) => e.topic === 'lab/meter/t').length === 2, 5000, 'two readings');
      expect(events.filter((e) => e.topic === 'lab/meter/t').map((e) => e.payload)).toEqual([
        { value: 21.5, unit: '°C' },
        { value: 21.6, unit: '°C' },
      ]);
      expect(driver.health().devices[0].failures).toEqual({ 'no-match': 1 });
    } finally {
      await closeWriter(writer);
      await driver.stop(Date.now() + 1000);
      await kvcable.stop();
    }

    const missing = new SerialDriver(
      serialSchema.parse({ name: 'nope', type: 'serial', path: `${dir.path}/no-such-tty`, topic: 'x' }),
    );
    const statuses: EventInput[] = [];
    await missing.start({ gatewayId: 'gw', logger: silentLogger, emit: async (b) => void statuses.push(...b) });
    await eventually(() => missing.health().devices[0].state === 'down', 3000, 'missing port down');
    expect(missing.health().devices[0].failures.open).toBeGreaterThanOrEqual(1);
    expect(missing.health().devices[0].lastError).toMatch(/cannot open .*no-such-tty/);
    expect(statuses[0]).toMatchObject({
      kind: 'status',
      topic: 'sluice/drivers/nope/status',
      payload: { state: 'down', device: `${dir.path}/no-such-tty` },
    });
    await missing.stop(Date.now() + 1000);
  });
});
