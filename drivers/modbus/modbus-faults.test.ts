/**
 * Faults a field bus produces that pymodbus will not: a slave on the far end of a socat pty pair
 * answers with a bad CRC, a short frame, an answer from another unit id, and a late answer, before it
 * answers properly. The driver must count each, never emit a value from a bad or stale frame, and
 * keep polling. And a TCP slave that accepts but never answers must not hold up stop().
 */
import { createServer, type Socket } from 'node:net';
import { SerialPort } from 'serialport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectEvents } from '../../test/drivers/collect.js';
import { silentLogger } from '../../src/core/log.js';
import { eventually, type Restartable, startSerialPair } from '../../test/drivers/field-peers.js';
import { tempDir } from '../../test/helpers/peers.js';
import { ModbusDriver } from './index.js';
import { modbusRtuSchema, modbusTcpSchema } from './schema.js';

function crc16(buf: Buffer): number {
  let crc = 0xffff;
  for (const b of buf) {
    crc ^= b;
    for (let i = 0; i < 8; i++) crc = crc & 1 ? (crc >> 1) ^ 0xa001 : crc >> 1;
  }
  return crc;
}

function frame(unit: number, value: number, corrupt = false): Buffer {
  const body = Buffer.from([unit, 3, 2, value >> 8, value & 0xff]);
  const crc = Buffer.alloc(2);
  crc.writeUInt16LE(crc16(body) ^ (corrupt ? 0x5555 : 0));
  return Buffer.concat([body, crc]);
}

describe('modbus-rtu on a faulty line', () => {
  const dir = tempDir('sluice-rtu-faults-');
  let cable: Restartable;
  let slave: SerialPort;
  beforeAll(async () => {
    cable = await startSerialPair(`${dir.path}/m`, `${dir.path}/s`);
    slave = new SerialPort({ path: `${dir.path}/s`, baudRate: 19200 });
    await new Promise((r) => slave.once('open', r));
  });
  afterAll(async () => {
    await new Promise<void>((r) => slave.close(() => r()));
    await cable.stop();
    dir.cleanup();
  });

  it('counts bad CRC, short frames, other units and late answers, and emits only good values', async () => {
    let requests = 0;
    slave.on('data', (req: Buffer) => {
      if (req.length < 8) return;
      requests++;
      const unit = req[0];
      switch (requests) {
        case 1:
          slave.write(frame(unit, 999, true)); // bad CRC
          break;
        case 2:
          slave.write(Buffer.from([unit, 3, 2])); // short frame, then silence
          break;
        case 3:
          slave.write(frame(unit + 4, 999)); // a valid frame from another unit
          break;
        case 4:
          setTimeout(() => slave.write(frame(unit, 999)), 450); // too late: 50 ms after the 400 ms timeout
          break;
        default:
          slave.write(frame(unit, 777));
      }
    });
    const config = modbusRtuSchema.parse({
      name: 'faulty',
      type: 'modbus-rtu',
      path: `${dir.path}/m`,
      baudRate: 19200,
      devices: [
        {
          unitId: 3,
          interval: '100ms',
          timeout: '400ms',
          retries: 1,
          points: [{ name: 'v', table: 'holding', address: 0, scale: 0.1, topic: 'f/v' }],
        },
      ],
    });
    const c = collectEvents();
    const driver = new ModbusDriver(config);
    await driver.start(c.ctx);
    try {
      await eventually(() => c.count('f/v') >= 3, 8000, 'three good readings');
      const values = c.events.filter((e) => e.topic === 'f/v').map((e) => (e.payload as { value: number }).value);
      expect(new Set(values)).toEqual(new Set([77.7]));
      const h = driver.health().devices[0];
      expect(h.state).toBe('up');
      // Each bad exchange is counted: a CRC error, and timeouts for the short frame, the other unit and the late answer.
      expect(h.failures, JSON.stringify(h.failures)).toHaveProperty('crc');
      expect(
        (h.failures.timeout ?? 0) + (h.failures['short-frame'] ?? 0) + (h.failures['wrong-unit'] ?? 0),
      ).toBeGreaterThanOrEqual(1);
    } finally {
      await driver.stop(Date.now() + 1000);
    }
  });
});

describe('modbus-rtu inter-frame gap', () => {
  const dir = tempDir('sluice-rtu-gap-');
  let cable: Restartable;
  let slave: SerialPort;
  beforeAll(async () => {
    cable = await startSerialPair(`${dir.path}/m`, `${dir.path}/s`);
    slave = new SerialPort({ path: `${dir.path}/s`, baudRate: 9600 });
    await new Promise((r) => slave.once('open', r));
  });
  afterAll(async () => {
    await new Promise<void>((r) => slave.close(() => r()));
    await cable.stop();
    dir.cleanup();
  });

  it('leaves at least 3.5 character times of silence between an answer and the next request', async () => {
    let answeredAt = 0;
    const silences: number[] = [];
    slave.on('data', (req: Buffer) => {
      if (req.length < 8) return;
      if (answeredAt) silences.push(performance.now() - answeredAt);
      slave.write(frame(req[0], 1));
      answeredAt = performance.now();
    });
    const driver = new ModbusDriver(
      modbusRtuSchema.parse({
        name: 'gap',
        type: 'modbus-rtu',
        path: `${dir.path}/m`,
        baudRate: 9600,
        // Three units polled as fast as the bus allows: the gap is all that separates their frames.
        devices: [1, 2, 3].map((unitId) => ({ unitId, interval: '1ms', points: [{ name: 'v', table: 'holding', address: 0 }] })),
      }),
    );
    await driver.start({ gatewayId: 'gw', logger: silentLogger, emit: async () => undefined });
    try {
      await eventually(() => silences.length >= 30, 8000, '30 exchanges');
    } finally {
      await driver.stop(Date.now() + 1000);
    }
    // 3.5 × 10 bits / 9600 baud = 3.65 ms (measured from our write of the answer, so a lower bound).
    expect(Math.min(...silences)).toBeGreaterThanOrEqual(3.6);
    expect(driver.health().devices.every((d) => Object.keys(d.failures).length === 0)).toBe(true);
  });
});

describe('modbus-tcp against a slave that never answers', () => {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('data', () => undefined); // accepts, reads, never answers
  });
  let port = 0;
  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });

  it('goes down on timeouts and stops by its deadline with a request in flight', async () => {
    const driver = new ModbusDriver(
      modbusTcpSchema.parse({
        name: 'mute',
        type: 'modbus-tcp',
        host: '127.0.0.1',
        port,
        devices: [
          {
            interval: '50ms',
            timeout: '300ms',
            retries: 0,
            downAfter: 2,
            points: [{ name: 'x', table: 'input', address: 0 }],
          },
        ],
      }),
    );
    await driver.start({ gatewayId: 'gw', logger: silentLogger, emit: async () => undefined });
    await eventually(() => driver.health().devices[0].state === 'down', 5000, 'down after timeouts');
    expect(driver.health().devices[0].failures.timeout).toBeGreaterThanOrEqual(2);
    await new Promise((r) => setTimeout(r, 120)); // most likely mid-request now
    const t0 = Date.now();
    await driver.stop(Date.now() + 500);
    expect(Date.now() - t0).toBeLessThan(1000); // the 500 ms deadline, plus slack for a loaded machine
    expect(driver.health().devices[0].state).toBe('stopped');
  });
});
