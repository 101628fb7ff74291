import { createRequire } from 'node:module';
import type { ModbusRTU } from 'modbus-serial/ModbusRTU.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectEvents } from '../../test/drivers/collect.js';
import { eventually, type ModbusPeer, startModbusTcp } from '../../test/drivers/field-peers.js';
import { ModbusDriver } from './index.js';
import { modbusTcpSchema } from './schema.js';

type Reading = { value: unknown; unit?: string; quality?: string };

describe('modbus-tcp against a pymodbus slave', () => {
  let peer: ModbusPeer;
  beforeAll(async () => {
    peer = await startModbusTcp([1, 2]);
  });
  afterAll(async () => {
    await peer?.stop();
  });

  it('reads every type with byte/word order, scale, bits, coils and discretes, in coalesced requests', async () => {
    const config = modbusTcpSchema.parse({
      name: 'plc1',
      type: 'modbus-tcp',
      host: '127.0.0.1',
      port: peer.port,
      devices: [
        {
          unitId: 2,
          interval: '200ms',
          timeout: '500ms',
          points: [
            { name: 'i16', table: 'holding', address: 0, type: 'int16', scale: 0.1, unit: '°C', topic: 't/i16' },
            { name: 'u16', table: 'holding', address: 1, type: 'uint16', topic: 't/u16' },
            { name: 'i32', table: 'holding', address: 2, type: 'int32', topic: 't/i32' },
            { name: 'u32', table: 'holding', address: 4, type: 'uint32', wordOrder: 'little', topic: 't/u32' },
            { name: 'f32', table: 'holding', address: 6, type: 'float32', unit: 'bar', topic: 't/f32' },
            { name: 'f64', table: 'holding', address: 8, type: 'float64', topic: 't/f64' },
            { name: 'bit0', table: 'holding', address: 12, bit: 0, topic: 't/bit0' },
            { name: 'bit1', table: 'holding', address: 12, bit: 1, topic: 't/bit1' },
            { name: 'bit15', table: 'holding', address: 12, bit: 15, topic: 't/bit15' },
            {
              name: 'f32badc',
              table: 'holding',
              address: 13,
              type: 'float32',
              byteOrder: 'little',
              topic: 't/f32badc',
            },
            { name: 'temp', table: 'holding', address: 15, scale: 0.1, offset: -1, topic: 't/temp' },
            { name: 'f64rev', table: 'holding', address: 16, type: 'float64', wordOrder: 'little', topic: 't/f64rev' },
            { name: 'missing', table: 'holding', address: 100, topic: 't/missing' },
            { name: 'in0', table: 'input', address: 0, topic: 't/in0' },
            { name: 'inf', table: 'input', address: 1, type: 'float32', topic: 't/inf' },
            { name: 'c0', table: 'coil', address: 0, topic: 't/c0' },
            { name: 'c1', table: 'coil', address: 1, topic: 't/c1' },
            { name: 'c7', table: 'coil', address: 7, topic: 't/c7' },
            { name: 'd1', table: 'discrete', address: 1, topic: 't/d1' },
            { name: 'd2', table: 'discrete', address: 2, topic: 't/d2' },
          ],
        },
      ],
    });
    const driver = new ModbusDriver(config);
    // holding 0..19 in one request, holding 100, input 0..2, coils 0..1 and 7 (maxGap 0), discretes 1..2.
    expect(driver.requestsPerPoll).toEqual([6]);
    const c = collectEvents<Reading>();
    await driver.start(c.ctx);
    try {
      await eventually(() => c.latest('t/d2'), 5000, 'a first poll');
      expect(c.latest('t/i16')).toEqual({ value: -123.4, unit: '°C' });
      expect(c.latest('t/u16')).toEqual({ value: 54321 });
      expect(c.latest('t/i32')).toEqual({ value: -123456789 });
      expect(c.latest('t/u32')).toEqual({ value: 3000000000 });
      expect(c.latest('t/f32')).toEqual({ value: 21.5, unit: 'bar' });
      expect(c.latest('t/f64')).toEqual({ value: Math.PI });
      expect(c.latest('t/bit0')?.value).toBe(true);
      expect(c.latest('t/bit1')?.value).toBe(false);
      expect(c.latest('t/bit15')?.value).toBe(true);
      expect(c.latest('t/f32badc')?.value).toBe(-7.25);
      expect(c.latest('t/temp')?.value).toBe(20.7); // (215 + unit 2) × 0.1 − 1
      expect(c.latest('t/f64rev')?.value).toBe(-2.5);
      expect(c.latest('t/in0')?.value).toBe(1002);
      expect(c.latest('t/inf')?.value).toBe(12.5);
      expect([c.latest('t/c0')?.value, c.latest('t/c1')?.value, c.latest('t/c7')?.value]).toEqual([true, false, true]);
      expect([c.latest('t/d1')?.value, c.latest('t/d2')?.value]).toEqual([true, false]);
      // The unmapped address answers with an exception: counted, the device degraded, the rest read.
      expect(c.latest('t/missing')).toBeUndefined();
      const h = driver.health().devices[0];
      expect(h.device).toBe('unit-2');
      expect(h.state).toBe('degraded');
      expect(h.failures.exception).toBeGreaterThanOrEqual(1);
      expect(h.lastError).toMatch(/holding 100.*Illegal data address/);
      expect(h.lastSuccessTs).toBeGreaterThan(0);
      expect(c.events.find((e) => e.topic === 't/f32')?.source).toBe('modbus-tcp:plc1');
    } finally {
      await driver.stop(Date.now() + 2000);
    }
    expect(driver.health().devices[0].state).toBe('stopped');
  });

  it('reports on change beyond the deadband, compared with the last reported value', async () => {
    const writer = new (createRequire(import.meta.url)('modbus-serial') as typeof ModbusRTU)();
    await writer.connectTCP('127.0.0.1', { port: peer.port });
    writer.setID(1);
    await writer.writeRegister(20, 100);
    const driver = new ModbusDriver(
      modbusTcpSchema.parse({
        name: 'roc',
        type: 'modbus-tcp',
        host: '127.0.0.1',
        port: peer.port,
        devices: [
          {
            unitId: 1,
            interval: '50ms',
            reportOnChange: true,
            deadband: 2,
            points: [
              { name: 'level', table: 'holding', address: 20, type: 'int16', topic: 'roc/level' },
              { name: 'slow', table: 'holding', address: 21, topic: 'roc/slow', deadband: 1000 },
            ],
          },
        ],
      }),
    );
    const c = collectEvents<Reading>();
    const values = () => c.events.filter((e) => e.topic === 'roc/level').map((e) => (e.payload as Reading).value);
    await driver.start(c.ctx);
    try {
      await eventually(() => values().length === 1, 3000, 'the first reading');
      for (const v of [101, 102, 103, 99, 98, 96]) {
        await writer.writeRegister(20, v & 0xffff);
        // Two polls completed after the write: the second one started after it, so it read v.
        const seen = new Set<number | null>([driver.health().devices[0].lastSuccessTs]);
        await eventually(() => seen.add(driver.health().devices[0].lastSuccessTs).size >= 3, 3000, 'two polls');
      }
      // Compared with the last reported value: 100; 101, 102 within 2; 103; 99 (4 off); 98 within 2; 96 (3 off).
      expect(values()).toEqual([100, 103, 99, 96]);
      expect(c.events.filter((e) => e.topic === 'roc/slow')).toHaveLength(1);
    } finally {
      await driver.stop(Date.now() + 1000);
      await new Promise<void>((r) => writer.close(() => r()));
    }
  });

  it('goes down when the slave dies, re-emits stale values, and comes back by itself', async () => {
    const config = modbusTcpSchema.parse({
      name: 'plc2',
      type: 'modbus-tcp',
      host: '127.0.0.1',
      port: peer.port,
      devices: [
        {
          unitId: 1,
          interval: '100ms',
          timeout: '300ms',
          retries: 0,
          downAfter: 2,
          maxBackoff: '400ms',
          reportOnChange: true,
          points: [{ name: 'temp', table: 'holding', address: 15, scale: 0.1, unit: '°C', topic: 'plant/temp' }],
        },
      ],
    });
    const driver = new ModbusDriver(config);
    const c = collectEvents<Reading>();
    await driver.start(c.ctx);
    try {
      await eventually(() => driver.health().devices[0].state === 'up', 5000, 'device up');
      // Report-on-change: an unchanged register is reported once, however many polls run.
      await new Promise((r) => setTimeout(r, 500));
      expect(c.events.filter((e) => e.topic === 'plant/temp')).toHaveLength(1);
      expect(c.latest('plant/temp')).toEqual({ value: 21.6, unit: '°C' });

      await peer.kill();
      await eventually(() => driver.health().devices[0].state === 'down', 8000, 'device down');
      expect(c.latest('plant/temp')).toEqual({ value: 21.6, unit: '°C', quality: 'stale' });
      const down = driver.health().devices[0];
      expect(down.consecutiveFailures).toBeGreaterThanOrEqual(2);
      expect(
        (down.failures.connect ?? 0) + (down.failures.timeout ?? 0) + (down.failures['not-open'] ?? 0),
      ).toBeGreaterThan(0);

      await peer.start();
      await eventually(() => driver.health().devices[0].state === 'up', 8000, 'device up again');
      await eventually(() => c.latest('plant/temp')?.quality === undefined, 3000, 'a fresh reading');
      expect(c.latest('plant/temp')).toEqual({ value: 21.6, unit: '°C' });
      expect(c.states()).toEqual(expect.arrayContaining(['up', 'down']));
      const statuses = c.events.filter((e) => e.kind === 'status');
      expect(statuses.at(-1)?.payload).toMatchObject({ driver: 'plc2', device: 'unit-1', state: 'up' });
      expect(statuses.at(-1)?.topic).toBe('sluice/drivers/plc2/status');
    } finally {
      const t0 = Date.now();
      await driver.stop(Date.now() + 2000);
      expect(Date.now() - t0).toBeLessThan(2100);
    }
  });
});
