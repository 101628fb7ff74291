/**
 * CPU cost of OPC UA subscriptions: 1,000 monitored items (Doubles that all change every second,
 * sampled at 1 s, published every 1 s) on a node-opcua server in its own process. Three phases,
 * one after another in this process, each measured with process.cpuUsage over the same wall time:
 * - baseline: a bare node-opcua client subscribed to the same items, counting the changes (the
 *   library floor: decoding the publish responses);
 * - the driver, its readings handed to a no-op emit (mapping, events, health);
 * - the driver emitting into a real ring log (what a gateway pays end to end).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { AttributeIds, OPCUAClient, TimestampsToReturn } from 'node-opcua-client';
import { openRingLog } from '../../../buffer/index.js';
import { OpcuaDriver } from '../../../drivers/opcua/index.js';
import { opcuaSchema } from '../../../drivers/opcua/schema.js';
import { bufferSchema } from '../../../src/config/schema.js';
import type { EventInput } from '../../../src/core/event.js';
import { silentLogger } from '../../../src/core/log.js';
import { freePort } from '../../helpers/peers.js';
import { cpuPercent, cpuVsBare, sig3 } from '../proc.js';
import type { BenchCase } from '../types.js';

const ITEMS = 1000;

function startServer(root: string, port: number, pki: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [join(root, 'dist/test/drivers/opcua-server.js'), String(port), String(ITEMS), pki], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    p.stderr?.on('data', (d) => {
      err = (err + d).slice(-2000);
    });
    p.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve(p);
    });
    p.once('exit', (code) => reject(new Error(`opcua-server.js exited (${code}): ${err}`)));
  });
}

const nodeIds = Array.from({ length: ITEMS }, (_, i) => `ns=1;s=Item${i}`);

async function bareClient(endpoint: string, ms: number): Promise<{ cpu: number; rate: number }> {
  const client = OPCUAClient.create({ endpointMustExist: false, connectionStrategy: { maxRetry: 1 } });
  await client.connect(endpoint);
  const session = await client.createSession();
  const sub = await session.createSubscription2({
    requestedPublishingInterval: 1000,
    requestedMaxKeepAliveCount: 10,
    requestedLifetimeCount: 60,
    maxNotificationsPerPublish: 0,
    publishingEnabled: true,
    priority: 1,
  });
  let changes = 0;
  const group = await sub.monitorItems(
    nodeIds.map((nodeId) => ({ nodeId, attributeId: AttributeIds.Value })),
    { samplingInterval: 1000, queueSize: 1, discardOldest: true },
    TimestampsToReturn.Both,
  );
  group.on('changed', () => {
    changes++;
  });
  await new Promise((r) => setTimeout(r, 2000));
  const before = changes;
  const t0 = performance.now();
  const cpu = await cpuPercent(ms);
  const rate = ((changes - before) * 1000) / (performance.now() - t0);
  await sub.terminate();
  await session.close();
  await client.disconnect();
  return { cpu, rate };
}

async function driverRun(endpoint: string, dataDir: string, ms: number, emit: (e: EventInput[]) => Promise<void>) {
  const driver = new OpcuaDriver(
    opcuaSchema.parse({
      name: 'bench',
      type: 'opcua',
      endpoint,
      publishingInterval: '1s',
      samplingInterval: '1s',
      nodes: nodeIds.map((nodeId, i) => ({ nodeId, topic: `bench/ua/${i}`, unit: 'kW' })),
    }),
  );
  let readings = 0;
  await driver.start({
    gatewayId: 'bench',
    logger: silentLogger,
    dataDir,
    emit: async (events) => {
      readings += events.length;
      await emit(events);
    },
  });
  const deadline = Date.now() + 30_000;
  while (readings < ITEMS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 1000));
  const before = readings;
  const t0 = performance.now();
  const cpu = await cpuPercent(ms);
  const rate = ((readings - before) * 1000) / (performance.now() - t0);
  const state = driver.health().devices[0].state;
  await driver.stop(Date.now() + 3000);
  return { cpu, rate, state };
}

const bench: BenchCase = {
  name: 'drivers-opcua',
  description: 'CPU of 1,000 OPC UA monitored items changing at 1 Hz (node-opcua server) vs a bare node-opcua client',
  timeoutMs: 180_000,
  async run(ctx) {
    const ms = ctx.quick ? 5000 : 15_000;
    const port = await freePort();
    const server = await startServer(ctx.root, port, ctx.tempDir('sluice-bench-ua-pki-'));
    const endpoint = `opc.tcp://127.0.0.1:${port}`;
    try {
      ctx.log(`bare node-opcua client, ${ms} ms`);
      const bare = await bareClient(endpoint, ms);
      ctx.log(`driver with a no-op emit, ${ms} ms`);
      const data = ctx.tempDir('sluice-bench-ua-');
      const noop = await driverRun(endpoint, data, ms, async () => undefined);
      ctx.log(`driver into a ring log, ${ms} ms`);
      const log = await openRingLog({ dir: join(data, 'log'), gatewayId: 'bench', config: bufferSchema.parse({}), logger: silentLogger });
      let logged: Awaited<ReturnType<typeof driverRun>>;
      try {
        logged = await driverRun(endpoint, data, ms, async (e) => void (await log.append(e)));
      } finally {
        await log.close();
      }
      const params = { items: ITEMS, hz: 1, seconds: ms / 1000, cpuUnit: '% of one core' };
      const baseline = { name: 'drivers.opcua.bare-node-opcua.cpu', cpu: bare.cpu };
      return [
        cpuVsBare('drivers.opcua.subscription.cpu', noop.cpu, baseline, {
          readingsPerSecond: sig3(noop.rate),
          bareChangesPerSecond: sig3(bare.rate),
          state: noop.state,
          ...params,
        }),
        cpuVsBare('drivers.opcua.subscription+ringlog.cpu', logged.cpu, baseline, { readingsPerSecond: sig3(logged.rate), state: logged.state, ...params }),
      ];
    } finally {
      const gone = new Promise((r) => server.once('exit', r));
      server.kill('SIGKILL');
      await gone;
    }
  },
};

export default bench;
