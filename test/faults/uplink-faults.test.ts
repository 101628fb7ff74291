/**
 * Network faults on the MQTT uplink: the fault proxy sits between the gateway's uplink
 * and a real Mosquitto; during sustained ingest it flaps the link 50 times (clean cuts, resets,
 * blackholes longer than the PUBACK timeout, slow links cut mid-batch), then the upstream broker
 * itself is restarted. Oracle: every event the gateway acknowledged is delivered at least once,
 * first deliveries in seq order, duplicates counted.
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../helpers/fault-proxy.js';
import { waitFor } from '../helpers/gateway.js';
import { type ChildGateway, startChildGateway } from './child-gateway.js';
import { prng } from './mqtt-fuzz.js';
import { GoodPublisher, Upstream } from './oracle.js';
import { record } from './report.js';

const FLAPS = Number(process.env.SLUICE_FLAPS ?? 50);

describe('uplink under network faults', () => {
  let upstream: Upstream;
  let proxy: FaultProxy;
  let gw: ChildGateway;

  beforeAll(async () => {
    upstream = await Upstream.start();
    proxy = await startFaultProxy({ targetPort: upstream.peer.port });
    gw = await startChildGateway({
      uplinks: [
        {
          name: 'cloud',
          type: 'mqtt',
          url: proxy.url('mqtt'),
          keepalive: '5s',
          connectTimeout: '2s',
          ackTimeout: '1500ms',
          reconnect: { minDelay: '50ms', maxDelay: '500ms' },
          retry: { initialDelay: '50ms', maxDelay: '500ms' },
          batch: { maxEvents: 200, maxDelay: '20ms' },
        },
      ],
    });
  });

  afterAll(async () => {
    await gw?.stop();
    gw?.cleanup();
    await proxy?.close();
    await upstream?.stop();
  });

  it(`delivers every acknowledged event through ${FLAPS} link flaps and an upstream restart`, async () => {
    const pubs = [0, 1].map(
      (i) => new GoodPublisher(`mqtt://127.0.0.1:${gw.mqttPort}`, { prefix: `flap${i}`, topic: `sensors/flap${i}/temp`, window: 10, ratePerSec: 250 }),
    );
    await Promise.all(pubs.map((p) => p.start()));
    const rnd = prng(9);
    const kinds: Record<string, number> = {};
    const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const t0 = Date.now();

    for (let i = 0; i < FLAPS; i++) {
      await pause(300 + rnd() * 500); // the link is up for a while: batches flow
      const kind = ['cut', 'reset', 'blackhole', 'slow-cut'][i % 4];
      kinds[kind] = (kinds[kind] ?? 0) + 1;
      if (kind === 'cut') proxy.cut();
      else if (kind === 'reset') proxy.reset();
      else if (kind === 'blackhole') {
        // Longer than the uplink's PUBACK timeout: the gateway must give up on the batch and resend.
        proxy.blackhole(true);
        await pause(1800);
        proxy.cut(); // what a NAT box does to a connection it forgot
        proxy.blackhole(false);
      } else {
        proxy.delay(150);
        await pause(200 + rnd() * 300);
        proxy.reset(); // mid-batch, PUBACKs still in the delay line
        proxy.delay(0);
      }
    }
    const flapSeconds = (Date.now() - t0) / 1000;

    // The upstream broker restarts (its persistent sessions survive), while intake goes on.
    await upstream.peer.kill('SIGTERM');
    await pause(1500);
    await upstream.peer.start();
    await pause(2000);
    await Promise.all(pubs.map((p) => p.stop()));

    const acked = new Set<string>();
    for (const p of pubs) for (const k of p.acked) acked.add(k);
    await waitFor(() => upstream.verdict(acked).lost === 0, 60_000, 'every acknowledged event upstream').catch(() => {});
    const v = upstream.verdict(acked);
    const status = await gw.status();
    const uplink = status.uplinks.find((u) => u.name === 'cloud');

    record('uplink-faults', {
      faults: FLAPS + 1,
      acknowledged: v.acknowledged,
      delivered: v.delivered,
      lost: v.lost,
      duplicates: v.duplicates,
      outOfOrder: v.outOfOrder,
      peakRssKb: gw.peakRssKb,
      flapKinds: kinds,
      flapSeconds: Math.round(flapSeconds),
      proxy: { connections: proxy.stats.connections, cuts: proxy.stats.cuts, resets: proxy.stats.resets, blackholes: proxy.stats.blackholes },
      uplinkRetried: uplink?.retried,
      upstreamBatches: upstream.batches,
    });

    if (v.lost > 0) {
      // Evidence for whoever fixes it: the missing runs, the batches around them, the gateway's log.
      const file = join(tmpdir(), `sluice-faults-uplink-loss-${Date.now()}.json`);
      const logs = gw.logs.filter((l) => l.level >= 40 || /uplink|batch|connect/i.test(String(l.msg))).slice(-2000);
      writeFileSync(file, JSON.stringify({ verdict: v, diagnosis: upstream.diagnose(acked), status, logs }, null, 1));
      console.error(`uplink loss evidence written to ${file}`);
    }
    expect(v.acknowledged).toBeGreaterThan(1000);
    expect(v.lost, `missing ${v.missing.join(', ')}`).toBe(0);
    expect(v.outOfOrder).toBe(0);
    // The faults were real: the uplink reconnected many times.
    expect(proxy.stats.connections).toBeGreaterThan(FLAPS / 2);
    expect(await gw.healthz()).toBe(200);
  });
});
