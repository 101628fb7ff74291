/**
 * The uplink drain end to end: `sluice run` (a child process, as deployed) starts on a data dir that
 * holds a 1M-event backlog and drains it through its MQTT uplink (live first) to a real Mosquitto,
 * while the raw-socket load generator publishes 5k msg/s at QoS 1 to the gateway's own broker.
 * - `uplink.gateway.mqtt.drain`: backlog events/s seen by the cloud subscriber, from the gateway's
 *   spawn (start-up included) until the whole backlog arrived; target >= 100k events/s.
 * - `uplink.gateway.mqtt.live.p99`: publish → cloud delivery of the live messages, 99th percentile
 *   (receipt minus the event's `ts`, stamped when the gateway accepted it, before its PUBACK);
 *   target <= 1000 ms.
 * The baseline (the bare client) is measured by the uplink-drain cases.
 */
import { loadavg } from 'node:os';
import { openRingLog } from '../../../buffer/index.js';
import { bufferSchema } from '../../../src/config/schema.js';
import { freePort, startMosquitto } from '../../helpers/peers.js';
import { startGateway } from '../gateway-proc.js';
import { runLoad } from '../mqtt-load.js';
import type { BenchCase } from '../types.js';
import { percentile, startCloudSubscriber } from '../uplink-cloud.js';

const LIVE_RATE = 5000;

const bench: BenchCase = {
  name: 'uplink-gateway-mqtt',
  description: 'sluice run drains a 1M-event backlog to Mosquitto while 5k msg/s QoS 1 are published to it',
  timeoutMs: 300_000,
  async run(ctx) {
    const backlog = ctx.quick ? 200_000 : 1_000_000;
    const cleanups: (() => Promise<unknown>)[] = [];
    try {
      const mosquitto = await startMosquitto();
      cleanups.unshift(() => mosquitto.stop());
      const dataDir = ctx.tempDir();
      const bufferConfig = { maxBytes: 4 * 1024 ** 3 };

      ctx.log(`filling a ${backlog.toLocaleString('en-US')}-event backlog`);
      const log = await openRingLog({ dir: dataDir, gatewayId: 'gw-bench', config: bufferSchema.parse(bufferConfig) });
      for (let i = 0; i < backlog; i += 5000) {
        await log.append(
          Array.from({ length: Math.min(5000, backlog - i) }, (_, k) => ({
            source: 'bench',
            topic: `sensors/s${(i + k) % 100}/temp`,
            payload: { value: 20 + ((i + k) % 50) / 10, unit: '°C' },
          })),
        );
      }
      const backlogLast = log.stats().lastSeq;
      await log.close();

      const cloud = await startCloudSubscriber({ kind: 'mqtt', url: mosquitto.url, topic: 'sluice/gw-bench/events', backlogLast });
      cleanups.unshift(() => cloud.terminate());

      const mqttPort = await freePort();
      const httpPort = await freePort();
      ctx.log('starting sluice run');
      // The drain is timed from the spawn, as the gateway starts forwarding as soon as it runs.
      const t0 = performance.now();
      const gw = await startGateway({
        root: ctx.root,
        dataDir,
        mqttPort,
        httpPort,
        configDir: ctx.tempDir(),
        maxBytes: bufferConfig.maxBytes,
        uplinks: [
          {
            name: 'cloud',
            type: 'mqtt',
            url: mosquitto.url,
            batch: { maxEvents: 1000, maxBytes: '1MiB', maxDelay: '20ms' },
            liveFirst: true,
            backlogShare: 0.5,
          },
        ],
      });
      cleanups.unshift(() => gw.stop());
      const readyMs = gw.readyMs;

      // Live publishes for as long as the drain may take (5 clients, 1k msg/s each).
      const liveSeconds = ctx.quick ? 10 : 20;
      const load = runLoad({
        port: mqttPort,
        qos: 1,
        clients: 5,
        messages: (LIVE_RATE / 5) * liveSeconds,
        rate: LIVE_RATE,
        size: 100,
        window: 100,
        topic: 'live/%c/temp',
        timeoutMs: (liveSeconds + 60) * 1000,
      });
      load.catch(() => {});

      const deadline = performance.now() + (ctx.quick ? 90_000 : 180_000);
      while (cloud.seenBacklog() < backlog && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      const seconds = (performance.now() - t0) / 1000;
      const seen = cloud.seenBacklog();
      const loadResult = await load;
      await new Promise((r) => setTimeout(r, 1000));
      const latencies = await cloud.report();
      const drainRate = seen / seconds;
      const p99 = percentile(latencies, 99);
      ctx.log(`${Math.round(drainRate)} events/s (ready after ${Math.round(readyMs)} ms), live p99 ${p99} ms over ${latencies.length}`);
      return [
        {
          name: 'uplink.gateway.mqtt.drain',
          value: Math.round(drainRate),
          unit: 'events/s',
          target: '>= 100k events/s',
          pass: drainRate >= 100_000,
          backlog,
          seconds: Number(seconds.toFixed(2)),
          complete: seen >= backlog,
          readyMs: Math.round(readyMs),
          loadAverage: Number(loadavg()[0].toFixed(1)),
        },
        {
          name: 'uplink.gateway.mqtt.live.p99',
          value: p99,
          unit: 'ms',
          target: '<= 1000 ms (publish to the gateway → cloud subscriber, during the drain)',
          pass: p99 <= 1000,
          p50: percentile(latencies, 50),
          max: percentile(latencies, 100),
          liveEvents: latencies.length,
          livePublished: loadResult.messages,
          livePubackP99: loadResult.latency?.p99,
          liveRate: Math.round(loadResult.rate),
        },
      ];
    } finally {
      for (const c of cleanups) await c().catch(() => {});
    }
  },
};
export default bench;
