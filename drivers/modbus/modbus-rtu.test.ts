import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectEvents } from '../../test/drivers/collect.js';
import { eventually, type Restartable, startModbusRtu, startSerialPair } from '../../test/drivers/field-peers.js';
import { tempDir } from '../../test/helpers/peers.js';
import { interFrameGapMs } from './bus.js';
import { ModbusDriver } from './index.js';
import { modbusRtuSchema } from './schema.js';

describe('modbus-rtu over a socat serial pair against the pymodbus RTU slave', () => {
  const dir = tempDir('sluice-rtu-');
  const master = `${dir.path}/master`;
  const slave = `${dir.path}/slave`;
  let cable: Restartable;
  let server: Restartable;
  beforeAll(async () => {
    cable = await startSerialPair(master, slave);
    server = await startModbusRtu(slave, 19200, [3, 4]);
  });
  afterAll(async () => {
    await server?.stop();
    await cable?.stop();
    dir.cleanup();
  });

  it('polls two unit ids on one bus, one request at a time, and counts a unit that does not answer', async () => {
    const config = modbusRtuSchema.parse({
      name: 'bus1',
      type: 'modbus-rtu',
      path: master,
      baudRate: 19200,
      devices: [
        {
          unitId: 3,
          interval: '150ms',
          timeout: '400ms',
          points: [
            { name: 'temp', table: 'holding', address: 15, scale: 0.1, unit: '°C', topic: 'rtu/3/temp' },
            { name: 'f32', table: 'holding', address: 6, type: 'float32', topic: 'rtu/3/f32' },
            { name: 'in0', table: 'input', address: 0, topic: 'rtu/3/in0' },
          ],
        },
        {
          unitId: 4,
          interval: '150ms',
          timeout: '400ms',
          points: [
            { name: 'temp', table: 'holding', address: 15, scale: 0.1, unit: '°C', topic: 'rtu/4/temp' },
            { name: 'c0', table: 'coil', address: 0, topic: 'rtu/4/c0' },
          ],
        },
        // Nobody answers as unit 9 on this bus: timeouts, then down; the other two keep going.
        {
          unitId: 9,
          interval: '150ms',
          timeout: '200ms',
          retries: 0,
          downAfter: 2,
          points: [{ name: 'x', table: 'holding', address: 0, topic: 'rtu/9/x' }],
        },
      ],
    });
    const { ctx, count, latest } = collectEvents();
    const driver = new ModbusDriver(config);
    await driver.start(ctx);
    try {
      await eventually(
        () => driver.health().devices[2].state === 'down' && count('rtu/4/c0') >= 3,
        10_000,
        'unit 9 down, 3+ polls of unit 4',
      );
      expect(latest('rtu/3/temp')).toEqual({ value: 21.8, unit: '°C' });
      expect(latest('rtu/4/temp')).toEqual({ value: 21.9, unit: '°C' });
      expect(latest('rtu/3/f32')).toEqual({ value: 21.5 });
      expect(latest('rtu/3/in0')).toEqual({ value: 1003 });
      expect(latest('rtu/4/c0')).toEqual({ value: true });
      const [u3, u4, u9] = driver.health().devices;
      expect(u3.state).toBe('up');
      expect(u4.state).toBe('up');
      expect(u9.failures.timeout).toBeGreaterThanOrEqual(2);
      // The dead unit's timeouts must not have garbled the frames of the live ones.
      expect(u3.failures).toEqual({});
      expect(u4.failures).toEqual({});
    } finally {
      await driver.stop(Date.now() + 2000);
    }
  });

  it('survives the RS-485 adapter being unplugged and plugged back', async () => {
    const driver = new ModbusDriver(
      modbusRtuSchema.parse({
        name: 'replug',
        type: 'modbus-rtu',
        path: master,
        baudRate: 19200,
        devices: [{ unitId: 4, interval: '100ms', timeout: '300ms', downAfter: 2, maxBackoff: '300ms', points: [{ name: 't', table: 'holding', address: 15, topic: 'replug/t' }] }],
      }),
    );
    const c = collectEvents();
    await driver.start(c.ctx);
    try {
      await eventually(() => driver.health().devices[0].state === 'up', 5000, 'up');
      // Unplug: the line and the slave behind it go away.
      await server.kill();
      await cable.kill();
      await eventually(() => driver.health().devices[0].state === 'down', 8000, 'down');
      // Plug back in (a new pty behind the same path, the slave restarted).
      await cable.start();
      await server.start();
      const before = c.events.length;
      await eventually(() => driver.health().devices[0].state === 'up', 10_000, 'up again');
      await eventually(() => c.events.slice(before).some((e) => e.topic === 'replug/t'), 5000, 'a reading after the replug');
      expect(c.latest('replug/t')).toEqual({ value: 219 });
    } finally {
      await driver.stop(Date.now() + 1000);
    }
  });

  it('counts a serial path that does not exist as down, and keeps retrying', async () => {
    const driver = new ModbusDriver(
      modbusRtuSchema.parse({
        name: 'nope',
        type: 'modbus-rtu',
        path: `${dir.path}/ttyNOPE0`,
        devices: [
          { interval: '100ms', downAfter: 1, maxBackoff: '200ms', points: [{ name: 'a', table: 'coil', address: 0 }] },
        ],
      }),
    );
    const c = collectEvents();
    await driver.start(c.ctx);
    try {
      await eventually(() => driver.health().devices[0].consecutiveFailures >= 2, 5000, 'two failed polls');
      const h = driver.health().devices[0];
      expect(h.state).toBe('down');
      // One attempt per poll: a port that does not open is not retried within the poll.
      expect(h.failures).toEqual({ open: h.consecutiveFailures });
      expect(h.lastError).toMatch(/cannot open .*ttyNOPE0/);
      expect(c.states()).toEqual(['down']);
    } finally {
      await driver.stop(Date.now() + 1000);
    }
  });

  it('computes the inter-frame gap from the line speed', () => {
    const line = {
      kind: 'rtu' as const,
      path: '/dev/null',
      parity: 'none' as const,
      dataBits: 8 as const,
      stopBits: 1 as const,
    };
    expect(interFrameGapMs({ ...line, baudRate: 9600 })).toBeCloseTo(3.646, 3);
    expect(interFrameGapMs({ ...line, baudRate: 19200, parity: 'even' })).toBeCloseTo(2.005, 3);
    expect(interFrameGapMs({ ...line, baudRate: 115200 })).toBe(1.75);
  });
});
