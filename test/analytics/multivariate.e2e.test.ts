/**
 * Multivariate detection end to end on a real gateway: a simulated pump publishes five correlated
 * sensors over MQTT, each on its own topic; the flow stops following the load (a correlation break)
 * while every sensor stays inside its own normal range. One anomaly event for the pump, naming the
 * flow in its per-sensor contributions, reaches the cloud Mosquitto (127.0.0.1:1883, through a
 * proxy that holds the link down while the backlog builds) ahead of the readings that waited.
 */
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { startTestGateway, type TestGateway, waitFor } from '../helpers/gateway.js';
import { tempDir } from '../helpers/peers.js';
import { PUMP_SENSORS, simulatedPump } from '../helpers/pump.js';

interface WireEvent {
  seq: number;
  topic: string;
  kind: string;
  payload: { detector?: string; contributions?: Record<string, number>; value?: unknown; sourceSeq?: number; [k: string]: unknown };
}

const PREFIX = `sluice-mv-${process.pid}-${Date.now()}`;
const NORMAL = 400;
const FAULTY = 60;

describe('multivariate detection end to end', () => {
  let proxy: FaultProxy;
  let gw: TestGateway;
  let pump: mqtt.MqttClient;
  const data = tempDir('sluice-mv-e2e-');

  beforeAll(async () => {
    proxy = await startFaultProxy({ targetPort: 1883 });
    proxy.refuse(true); // the link is down: a backlog builds
    gw = await startTestGateway(
      {
        gateway: { id: 'gw-mv', dataDir: data.path },
        uplinks: [{ name: 'cloud', type: 'mqtt', url: proxy.url('mqtt'), topicPrefix: PREFIX }],
        analytics: [
          {
            name: 'pumps',
            match: 'plant/pump/+/#',
            // The variables named (no discovery period): the vectors, hence the verdicts, are the
            // same on every run; a vector closes as soon as all five have reported.
            group: { variables: [...PUMP_SENSORS], align: '5s' },
            // The warm-up spans two of the load's cycles; one incident, one event.
            detector: { type: 'multivariate', warmup: 240, rest: 10_000 },
          },
        ],
      },
      data.path,
    );
    pump = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw.mqttPort}`, { clientId: 'pump7' });
  });

  afterAll(async () => {
    await pump?.endAsync();
    await gw?.stop();
    await proxy?.close();
    data.cleanup();
  });

  it('finds the correlation break, names the flow, and sends the anomaly ahead of the backlog', async () => {
    const sim = simulatedPump(21);
    const sent: Record<string, number[]> = Object.fromEntries(PUMP_SENSORS.map((k) => [k, []]));
    for (let i = 0; i < NORMAL + FAULTY; i++) {
      const r = sim(i, i >= NORMAL);
      for (const k of PUMP_SENSORS) sent[k].push(r[k]);
      // One second of the pump: the five sensors in flight together (one connection: in order).
      await Promise.all(PUMP_SENSORS.map((k) => pump.publishAsync(`plant/pump/7/${k}`, JSON.stringify({ value: r[k] }), { qos: 1 })));
    }
    // No sensor leaves its own normal range: single-sensor limits would see nothing.
    for (const k of PUMP_SENSORS) {
      const normal = sent[k].slice(60, NORMAL);
      const faulty = sent[k].slice(NORMAL);
      const span = Math.max(...normal) - Math.min(...normal);
      expect(Math.min(...faulty)).toBeGreaterThanOrEqual(Math.min(...normal) - 0.05 * span);
      expect(Math.max(...faulty)).toBeLessThanOrEqual(Math.max(...normal) + 0.05 * span);
    }
    await waitFor(() => gw.gateway.analytics?.status().byDetector.multivariate, 10_000, 'the multivariate anomaly');
    const total = (NORMAL + FAULTY) * PUMP_SENSORS.length;

    const received: WireEvent[] = [];
    const batches: WireEvent[][] = [];
    const sub = await mqtt.connectAsync('mqtt://127.0.0.1:1883', { clientId: `${PREFIX}-sub` });
    await sub.subscribeAsync(`${PREFIX}/gw-mv/events`, { qos: 1 });
    sub.on('message', (_t, payload) => {
      const events = JSON.parse(payload.toString()).events as WireEvent[];
      batches.push(events);
      received.push(...events);
    });
    try {
      proxy.refuse(false); // the link comes back
      await waitFor(() => received.filter((e) => e.kind === 'reading').length >= total, 40_000, 'the backlog at the cloud');
    } finally {
      await sub.endAsync();
    }
    const readings = received.filter((e) => e.kind === 'reading');
    const anomalies = received.filter((e) => e.kind === 'anomaly');
    expect(anomalies).toHaveLength(1);
    const a = anomalies[0];
    expect(a.topic).toBe('plant/pump/7/anomaly');
    expect(a.payload).toMatchObject({ rule: 'pumps', detector: 'multivariate', topic: 'plant/pump/7' });
    // Raised by a reading of the faulty stretch, within a minute of vectors (1 Hz) of the break.
    const faultStart = readings[NORMAL * PUMP_SENSORS.length].seq;
    expect(a.payload.sourceSeq).toBeGreaterThanOrEqual(faultStart);
    expect(a.payload.sourceSeq! - faultStart).toBeLessThan(60 * PUMP_SENSORS.length);
    // Per-sensor contributions: every sensor, summing to 1, the flow first.
    const c = a.payload.contributions!;
    expect(Object.keys(c).sort()).toEqual([...PUMP_SENSORS]);
    expect(Object.values(c).reduce((x, y) => x + y, 0)).toBeCloseTo(1, 2);
    expect(Object.entries(c).sort((x, y) => y[1] - x[1])[0][0]).toBe('flow');
    expect(a.payload.reason).toMatch(/moved most: flow/);
    // Ahead of the backlog: in the first batch read once it existed (at most the one batch already
    // in flight when the link went down goes before it).
    expect(batches.findIndex((b) => b.includes(a))).toBeLessThanOrEqual(1);
    expect(received.indexOf(a)).toBeLessThan(readings.length / 2);
  }, 60_000);
});
