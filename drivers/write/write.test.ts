import { createRequire } from 'node:module';
import type { ModbusRTU } from 'modbus-serial/ModbusRTU.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventInput } from '../../src/core/event.js';
import { silentLogger } from '../../src/core/log.js';
import { eventually, type ModbusPeer, startModbusTcp } from '../../test/drivers/field-peers.js';
import { ModbusDriver } from '../modbus/index.js';
import { modbusTcpSchema } from '../modbus/schema.js';
import { WritePath } from './path.js';

const ModbusClient = createRequire(import.meta.url)('modbus-serial') as typeof ModbusRTU;

/** What the pymodbus slave holds, read by a client of our own (not the driver under test). */
async function holding(port: number, address: number, count: number): Promise<number[]> {
  const c = new ModbusClient();
  await c.connectTCP('127.0.0.1', { port });
  c.setID(1);
  try {
    return (await c.readHoldingRegisters(address, count)).data;
  } finally {
    c.close(() => undefined);
  }
}

describe('writes to a pymodbus slave through the write path', () => {
  let peer: ModbusPeer;
  let driver: ModbusDriver;
  const audits: EventInput[] = [];
  let writes: WritePath;
  const audit = (outcome: string) => audits.filter((e) => (e.payload as { outcome: string }).outcome === outcome);

  beforeAll(async () => {
    peer = await startModbusTcp([1]);
    driver = new ModbusDriver(
      modbusTcpSchema.parse({
        name: 'plc-mb',
        type: 'modbus-tcp',
        host: '127.0.0.1',
        port: peer.port,
        devices: [
          {
            unitId: 1,
            interval: '200ms',
            timeout: '300ms',
            downAfter: 2,
            points: [
              { name: 'setpoint', table: 'holding', address: 10, type: 'uint16', writable: { min: 0, max: 100 } },
              { name: 'temp', table: 'holding', address: 20, type: 'float32', wordOrder: 'little', scale: 0.5, writable: { verify: true, minInterval: '1s' } },
              { name: 'level', table: 'holding', address: 24, type: 'int32', byteOrder: 'little', writable: { allowed: [-5, 7] } },
              { name: 'pump', table: 'coil', address: 3, writable: { verify: true } },
              { name: 'readonly', table: 'holding', address: 30, type: 'uint16' },
              { name: 'queued', table: 'holding', address: 32, type: 'uint16', writable: { queueFor: '20s' } },
            ],
          },
        ],
      }),
    );
    await driver.start({ gatewayId: 'gw', logger: silentLogger, emit: async () => undefined });
    writes = new WritePath({
      driver: (n) => (n === 'plc-mb' ? driver : undefined),
      audit: async (e) => {
        audits.push(e);
      },
    });
  }, 30_000);
  afterAll(async () => {
    await driver?.stop(Date.now() + 2000);
    await peer?.stop();
  });

  it('writes registers in the configured byte and word order, and a coil, that the slave then holds', async () => {
    await eventually(() => driver.health().devices[0].state === 'up', 10_000, 'up');
    const req = (point: string, value: unknown) => ({ driver: 'plc-mb', point, value, reason: 'test', requester: 'test:me' });
    expect(await writes.write(req('setpoint', 42))).toEqual({ ok: true, outcome: 'accepted' });
    expect(await holding(peer.port, 10, 1)).toEqual([42]);
    // float32 of 21.75 / 0.5 = 43.5 (0x422E0000), least significant word first.
    expect(await writes.write(req('temp', 21.75))).toEqual({ ok: true, outcome: 'verified', readBack: 21.75 });
    expect(await holding(peer.port, 20, 2)).toEqual([0x0000, 0x422e]);
    // int32 -5 = 0xFFFFFFFB, bytes of each word swapped.
    expect(await writes.write(req('level', -5))).toMatchObject({ ok: true });
    expect(await holding(peer.port, 24, 2)).toEqual([0xffff, 0xfbff]);
    expect(await writes.write(req('pump', true))).toEqual({ ok: true, outcome: 'verified', readBack: true });

    const a = audits.find((e) => (e.payload as { point: string }).point === 'setpoint')!;
    expect(a).toMatchObject({ kind: 'audit', topic: 'sluice/audit/write/plc-mb/setpoint', source: 'write' });
    expect(a.payload).toEqual({
      action: 'write',
      driver: 'plc-mb',
      point: 'setpoint',
      device: 'unit-1',
      value: 42,
      outcome: 'accepted',
      ok: true,
      requester: 'test:me',
      reason: 'test',
    });
  }, 30_000);

  it('refuses what the config does not allow, each with an audit event, and sends nothing', async () => {
    const before = await holding(peer.port, 10, 1);
    const w = (point: string, value: unknown) => writes.write({ driver: 'plc-mb', point, value, requester: 'test:me' });
    expect(await w('setpoint', 101)).toMatchObject({ ok: false, outcome: 'refused', error: expect.stringMatching(/above the maximum 100/) });
    expect(await w('setpoint', 'high')).toMatchObject({ outcome: 'refused', error: expect.stringMatching(/not a number/) });
    expect(await w('level', 6)).toMatchObject({ outcome: 'refused', error: expect.stringMatching(/allowed values \[-5,7\]/) });
    expect(await w('readonly', 1)).toMatchObject({ outcome: 'refused', error: 'point "readonly" of driver "plc-mb" is not declared writable' });
    expect(await writes.write({ driver: 'nope', point: 'x', value: 1, requester: 'test:me' })).toMatchObject({ error: 'no driver named "nope"' });
    // minInterval 1 s on temp: the write above was less than a second ago... or wait it out first.
    await new Promise((r) => setTimeout(r, 1100));
    expect(await w('temp', 10)).toMatchObject({ ok: true });
    expect(await w('temp', 11)).toMatchObject({ outcome: 'refused', error: expect.stringMatching(/at most one write per 1000 ms/) });
    expect(await holding(peer.port, 10, 1)).toEqual(before);
    expect(audit('refused').length).toBeGreaterThanOrEqual(6);
  }, 30_000);

  it('a device that is down fails fast with a clear result, unless the point asks to wait (queueFor)', async () => {
    await peer.kill();
    await eventually(() => driver.health().devices[0].state === 'down', 10_000, 'down');
    const started = Date.now();
    const r = await writes.write({ driver: 'plc-mb', point: 'setpoint', value: 5, requester: 'test:me' });
    expect(Date.now() - started).toBeLessThan(100);
    expect(r).toMatchObject({ ok: false, outcome: 'failed', error: expect.stringMatching(/^device unit-1 of plc-mb is down .*the write was not sent$/) });
    expect(audit('failed').at(-1)?.payload).toMatchObject({ point: 'setpoint', value: 5, outcome: 'failed' });

    // A point with queueFor waits for the device; a newer write replaces the waiting one.
    const first = writes.write({ driver: 'plc-mb', point: 'queued', value: 1, requester: 'test:me' });
    const second = writes.write({ driver: 'plc-mb', point: 'queued', value: 2, requester: 'test:me' });
    expect(await first).toMatchObject({ outcome: 'refused', error: 'replaced by a newer write to the same point' });
    await peer.start();
    expect(await second).toEqual({ ok: true, outcome: 'accepted' });
    expect(await holding(peer.port, 32, 1)).toEqual([2]);
  }, 30_000);
});
