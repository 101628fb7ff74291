/**
 * Resources: 1,000 connected sensors publishing QoS 1 and one dead uplink (blackholed:
 * connections accepted, nothing answered) for a sustained run. The gateway's RssAnon stays under
 * 150 MB and intake keeps up with the offered load throughout. Then the gateway is frozen
 * (SIGSTOP) past the sensors' keepalive and thawed (SIGCONT): they reconnect and resend, and once
 * the uplink comes back every acknowledged event reaches the cloud.
 *
 * SLUICE_SOAK_SECONDS (default 60) sets the length of the sustained run.
 */
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../helpers/fault-proxy.js';
import { waitFor } from '../helpers/gateway.js';
import { type ChildGateway, startChildGateway } from './child-gateway.js';
import { Upstream } from './oracle.js';
import { record } from './report.js';

const CLIENTS = Number(process.env.SLUICE_SOAK_CLIENTS ?? 1000);
const SOAK_SECONDS = Number(process.env.SLUICE_SOAK_SECONDS ?? 60);
/** Each sensor publishes once per this many ms: 1,000 sensors → 400 events/s offered. */
const PERIOD_MS = 2500;
const WINDOW_MS = 5000;
const RSS_LIMIT_KB = 150 * 1024;

describe('1,000 clients, a dead uplink, SIGSTOP/SIGCONT', () => {
  let upstream: Upstream;
  let proxy: FaultProxy;
  let gw: ChildGateway;
  const clients: mqtt.MqttClient[] = [];
  const acked = new Set<string>();
  let sent = 0;
  let publishing = false;
  const timers: NodeJS.Timeout[] = [];

  beforeAll(async () => {
    upstream = await Upstream.start();
    proxy = await startFaultProxy({ targetPort: upstream.peer.port });
    proxy.blackhole(true); // the uplink is dead from the start
    gw = await startChildGateway(
      {
        uplinks: [{ name: 'cloud', type: 'mqtt', url: proxy.url('mqtt'), connectTimeout: '2s', ackTimeout: '2s', reconnect: { minDelay: '500ms', maxDelay: '2s' } }],
      },
      { nofile: 8192 },
    );
  });

  afterAll(async () => {
    publishing = false;
    for (const t of timers) clearInterval(t);
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})));
    await gw?.stop();
    gw?.cleanup();
    await proxy?.close();
    await upstream?.stop();
  });

  function publishLoop(c: mqtt.MqttClient, i: number): void {
    let n = 0;
    // Spread the sensors over the period so the load is even.
    const start = setTimeout(() => {
      const t = setInterval(() => {
        if (!publishing) return;
        const k = `c${i}-${n++}`;
        sent++;
        c.publish('sensors/fleet/temp', JSON.stringify({ k, value: n }), { qos: 1 }, (err) => {
          if (!err) acked.add(k);
        });
      }, PERIOD_MS);
      timers.push(t);
    }, (i * PERIOD_MS) / CLIENTS);
    timers.push(start);
  }

  it(`holds ${CLIENTS} clients and intake for ${SOAK_SECONDS} s with a dead uplink, under 150 MB`, async () => {
    const url = `mqtt://127.0.0.1:${gw.mqttPort}`;
    for (let i = 0; i < CLIENTS; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(50, CLIENTS - i) }, (_, j) =>
          mqtt.connectAsync(url, { clientId: `soak-${i + j}`, keepalive: 4, reconnectPeriod: 500, connectTimeout: 10_000 }),
        ),
      );
      clients.push(...batch);
    }
    clients.forEach((c, i) => {
      c.on('error', () => {});
      publishLoop(c, i);
    });
    expect((await gw.status()).broker.clients).toBe(CLIENTS);
    gw.resetPeak();
    publishing = true;

    const windows: number[] = [];
    const rss: number[] = [];
    let last = acked.size;
    const t0 = Date.now();
    while (Date.now() - t0 < SOAK_SECONDS * 1000) {
      await new Promise((r) => setTimeout(r, WINDOW_MS));
      windows.push(acked.size - last);
      last = acked.size;
      rss.push(gw.rssKb());
    }
    const status = await gw.status();
    const uplink = status.uplinks.find((u) => u.name === 'cloud');
    const offeredPerWindow = (CLIENTS * WINDOW_MS) / PERIOD_MS;
    record('soak', {
      cases: CLIENTS,
      peakRssKb: gw.peakRssKb,
      clients: CLIENTS,
      seconds: SOAK_SECONDS,
      offeredPerSecond: (CLIENTS * 1000) / PERIOD_MS,
      ackedPerWindow: windows,
      rssKbPerWindow: rss,
      pendingAtDeadUplink: uplink?.pendingEvents,
    });

    expect(status.broker.clients).toBe(CLIENTS);
    expect(uplink?.connected).toBe(false);
    expect(uplink?.pendingEvents).toBeGreaterThan(0);
    // Intake keeps up with the offered load in every window after the first (a generous margin:
    // CI machines are loaded; a stall or a slide shows as a window far below the offer).
    for (const w of windows.slice(1)) expect(w).toBeGreaterThan(offeredPerWindow * 0.6);
    expect(gw.peakRssKb, 'peak RssAnon (KiB)').toBeLessThan(RSS_LIMIT_KB);
  }, (SOAK_SECONDS + 120) * 1000); // connecting 1,000 clients and the run itself

  it('SIGSTOP past the keepalive, then SIGCONT: the clients reconnect, and nothing acknowledged is lost', async () => {
    let reconnects = 0;
    for (const c of clients) c.on('connect', () => reconnects++);
    gw.signal('SIGSTOP');
    await new Promise((r) => setTimeout(r, 8000)); // > 1.5 × keepalive: every client gives up on its connection
    gw.signal('SIGCONT');
    await waitFor(() => clients.every((c) => c.connected), 60_000, 'every client to reconnect');
    await waitFor(async () => (await gw.status()).broker.clients === CLIENTS, 30_000, 'the gateway to see every client again');
    const ackedBefore = acked.size;
    await waitFor(() => acked.size > ackedBefore + CLIENTS, 30_000, 'intake after the thaw');
    publishing = false;
    await new Promise((r) => setTimeout(r, 3000)); // in-flight publishes settle

    // The uplink comes back: the backlog drains and every acknowledged event reaches the cloud.
    proxy.blackhole(false);
    proxy.cut();
    await waitFor(() => upstream.verdict(acked).lost === 0, 90_000, 'the backlog to drain upstream').catch(() => {});
    const v = upstream.verdict(acked);
    record('sigstop', {
      faults: 2,
      acknowledged: v.acknowledged,
      delivered: v.delivered,
      lost: v.lost,
      duplicates: v.duplicates,
      outOfOrder: v.outOfOrder,
      reconnects,
      sent,
      peakRssKb: gw.peakRssKb,
    });
    expect(reconnects).toBeGreaterThanOrEqual(CLIENTS);
    expect(v.lost, `missing ${v.missing.join(', ')}`).toBe(0);
    expect(v.outOfOrder).toBe(0);
    // /healthz reports the 8 s stop as an event loop stall (the process cannot tell one from the
    // other) until it has left the liveness window and the one before (10 s each): green after that.
    await waitFor(async () => (await gw.healthz()) === 200, 30_000, '/healthz green again once the stall has left the liveness window');
  });
});
