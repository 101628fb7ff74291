/**
 * CPU cost of Modbus polling: 10 devices × 100 points at 1 Hz against a pymodbus TCP slave (one
 * server, unit ids 1-10, the way a Modbus gateway fronts a line of meters). Three phases, one after
 * another in this process, each measured with process.cpuUsage over the same wall time:
 * - baseline: a bare modbus-serial loop doing the same 10 reads of 100 registers per second, no
 *   decoding, no events (the library floor);
 * - the driver, its readings handed to a no-op emit (decoding, scaling, events, health);
 * - the driver emitting into a real ring log (what a gateway pays for the readings end to end).
 */
import { createRequire } from 'node:module';
import type { ModbusRTU } from 'modbus-serial/ModbusRTU.js';
import { openRingLog } from '../../../buffer/index.js';
import { ModbusDriver } from '../../../drivers/modbus/index.js';
import { modbusTcpSchema } from '../../../drivers/modbus/schema.js';
import { bufferSchema } from '../../../src/config/schema.js';
import type { EventInput } from '../../../src/core/event.js';
import { silentLogger } from '../../../src/core/log.js';
import { startModbusTcp } from '../../drivers/field-peers.js';
import { cpuPercent, cpuVsBare, sig3 } from '../proc.js';
import type { BenchCase } from '../types.js';

const DEVICES = 10;
const POINTS = 100;

async function bareLoop(port: number, ms: number): Promise<{ cpu: number; reads: number }> {
  const Client = createRequire(import.meta.url)('modbus-serial') as typeof ModbusRTU;
  const client = new Client();
  await client.connectTCP('127.0.0.1', { port });
  client.setTimeout(1000);
  let reads = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const t0 = Date.now();
      for (let unit = 1; unit <= DEVICES && running; unit++) {
        client.setID(unit);
        await client.readHoldingRegisters(200, POINTS);
        reads++;
      }
      await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - t0))));
    }
  })();
  const cpu = await cpuPercent(ms);
  running = false;
  await loop;
  await new Promise<void>((r) => client.close(() => r()));
  return { cpu, reads };
}

function driverConfig(port: number) {
  return modbusTcpSchema.parse({
    name: 'bench',
    type: 'modbus-tcp',
    host: '127.0.0.1',
    port,
    devices: Array.from({ length: DEVICES }, (_, d) => ({
      unitId: d + 1,
      interval: '1s',
      timeout: '1s',
      points: Array.from({ length: POINTS }, (_, i) => ({
        name: `p${i}`,
        table: 'holding',
        address: 200 + i,
        scale: 0.1,
        unit: 'kW',
        topic: `bench/${d + 1}/p${i}`,
      })),
    })),
  });
}

async function driverRun(port: number, ms: number, emit: (e: EventInput[]) => Promise<void>) {
  const driver = new ModbusDriver(driverConfig(port));
  let readings = 0;
  await driver.start({
    gatewayId: 'bench',
    logger: silentLogger,
    emit: async (events) => {
      readings += events.length;
      await emit(events);
    },
  });
  // One interval to connect and settle, then measure.
  await new Promise((r) => setTimeout(r, 1200));
  const before = readings;
  const t0 = performance.now();
  const cpu = await cpuPercent(ms);
  const rate = ((readings - before) * 1000) / (performance.now() - t0);
  const health = driver.health();
  await driver.stop(Date.now() + 2000);
  return {
    cpu,
    rate,
    requestsPerPoll: driver.requestsPerPoll[0],
    down: health.devices.filter((d) => d.state !== 'up').length,
  };
}

const bench: BenchCase = {
  name: 'drivers-modbus',
  description: 'CPU of polling 10 Modbus TCP devices × 100 points at 1 Hz (pymodbus) vs a bare modbus-serial loop',
  timeoutMs: 120_000,
  async run(ctx) {
    const ms = ctx.quick ? 4000 : 15_000;
    const slave = await startModbusTcp(Array.from({ length: DEVICES }, (_, i) => i + 1));
    const port = slave.port;
    try {
      ctx.log(`bare modbus-serial loop, ${ms} ms`);
      const bare = await bareLoop(port, ms);
      ctx.log(`driver with a no-op emit, ${ms} ms`);
      const noop = await driverRun(port, ms, async () => undefined);
      ctx.log(`driver into a ring log, ${ms} ms`);
      const log = await openRingLog({
        dir: ctx.tempDir('sluice-bench-modbus-'),
        gatewayId: 'bench',
        config: bufferSchema.parse({}),
        logger: silentLogger,
      });
      let logged: Awaited<ReturnType<typeof driverRun>>;
      try {
        logged = await driverRun(port, ms, async (e) => void (await log.append(e)));
      } finally {
        await log.close();
      }
      const params = { devices: DEVICES, points: POINTS, hz: 1, seconds: ms / 1000, cpuUnit: '% of one core' };
      const baseline = { name: 'drivers.modbus.bare-modbus-serial.cpu', cpu: bare.cpu };
      return [
        cpuVsBare('drivers.modbus.poll.cpu', noop.cpu, baseline, {
          target: '<= 5% of one core for 1000 readings/s',
          pass: noop.cpu <= 5 && noop.down === 0,
          readingsPerSecond: sig3(noop.rate),
          requestsPerPollPerDevice: noop.requestsPerPoll,
          devicesNotUp: noop.down,
          ...params,
        }),
        cpuVsBare('drivers.modbus.poll+ringlog.cpu', logged.cpu, baseline, { readingsPerSecond: sig3(logged.rate), devicesNotUp: logged.down, ...params }),
      ];
    } finally {
      await slave.stop();
    }
  },
};

export default bench;
