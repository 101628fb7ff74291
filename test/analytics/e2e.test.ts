/**
 * Analytics end to end on a real gateway: a reading stream with a spike, a flatline
 * and a dropout, published by an MQTT client to the gateway's broker, produces the right anomaly
 * events within one reading of the cause; a local action message is published on the local broker
 * (the loop closes with the cloud down); and once the cloud is back, the anomalies reach it ahead of
 * the backlog of readings that waited.
 */
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway, waitFor } from '../helpers/gateway.js';
import { type Peer, startMosquitto, tempDir } from '../helpers/peers.js';

interface WireEvent {
  seq: number;
  topic: string;
  kind: string;
  payload: { detector?: string; sourceSeq?: number; value?: number; [k: string]: unknown };
}

describe('analytics end to end', () => {
  let cloud: Peer;
  let gw: TestGateway;
  let sensor: mqtt.MqttClient;
  let actuator: mqtt.MqttClient;
  const alarms: { topic: string; payload: string }[] = [];
  const data = tempDir('sluice-analytics-e2e-');

  beforeAll(async () => {
    cloud = await startMosquitto();
    await cloud.kill(); // the link is down: a backlog builds
    gw = await startTestGateway(
      {
        gateway: { id: 'gw-an', dataDir: data.path },
        uplinks: [{ name: 'cloud', type: 'mqtt', url: cloud.url, topicPrefix: 'sluice' }],
        analytics: [
          {
            name: 'tank',
            match: 'plant/+/temp',
            field: 'value',
            detector: ['auto', { type: 'flatline', count: 5 }, { type: 'gap', interval: '300ms', factor: 3 }],
            actions: [{ topic: 'plant/alarm', payload: '{"on":true,"why":"{detector}"}', detectors: ['auto'], minInterval: '1m' }],
          },
        ],
      },
      data.path,
    );
    actuator = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw.mqttPort}`, { clientId: 'valve' });
    await actuator.subscribeAsync('plant/alarm', { qos: 1 });
    actuator.on('message', (topic, payload) => alarms.push({ topic, payload: payload.toString() }));
    sensor = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw.mqttPort}`, { clientId: 'tank1' });
  });

  afterAll(async () => {
    await sensor?.endAsync();
    await actuator?.endAsync();
    await gw?.stop();
    await cloud?.stop();
    data.cleanup();
  });

  it('finds the spike, the flatline and the dropout, acts locally, and sends anomalies first', async () => {
    const values: number[] = [];
    for (let i = 0; i < 300; i++) values.push(Math.round((20 + 5 * Math.sin((2 * Math.PI * i) / 50) + ((i * 37) % 11) / 40) * 1000) / 1000);
    values.push(60); // the spike: reading #301
    for (let k = 0; k < 5; k++) values.push(21.5); // stuck: the 5th completes the flatline (reading #306)
    for (const v of values) await sensor.publishAsync('plant/tank1/temp', JSON.stringify({ value: v, unit: '°C' }), { qos: 1 });
    // Dropout: the sensor goes quiet; the engine's clock reports it within a tick of 3 × 300 ms.
    await waitFor(() => gw.gateway.analytics?.status().byDetector.gap, 5000, 'the gap anomaly');
    const st = gw.gateway.analytics!.status();
    // auto reports the spike and, from its own clock, the dropout (it may also have seen a pause in
    // the burst of publishes as one: the burst's intervals are milliseconds).
    expect(st.byDetector).toMatchObject({ flatline: 1, gap: 1 });
    expect(st.byDetector.auto).toBeGreaterThanOrEqual(2);
    // The loop closed locally, with the cloud down.
    await waitFor(() => alarms.length > 0, 5000, 'the local alarm');
    expect(alarms).toEqual([{ topic: 'plant/alarm', payload: '{"on":true,"why":"auto"}' }]);

    // The link comes back: anomalies go out ahead of the 306 readings that waited.
    const received: WireEvent[] = [];
    const batches: WireEvent[][] = [];
    await cloud.start();
    const sub = await mqtt.connectAsync(cloud.url, { clientId: 'cloud-sub' });
    await sub.subscribeAsync('sluice/gw-an/events', { qos: 1 });
    sub.on('message', (_t, payload) => {
      const events = JSON.parse(payload.toString()).events as WireEvent[];
      batches.push(events);
      received.push(...events);
    });
    try {
      await waitFor(() => received.filter((e) => e.kind === 'reading').length >= 306, 30_000, 'the backlog at the cloud');
    } finally {
      await sub.endAsync();
    }
    const readings = received.filter((e) => e.kind === 'reading');
    const anomalies = received.filter((e) => e.kind === 'anomaly');
    const seqOf = (n: number) => readings[n - 1].seq; // the n-th reading published
    const by = (d: string) => anomalies.filter((a) => a.payload.detector === d);
    // Within one reading of the cause: each anomaly names the reading that caused it.
    const spike = by('auto').filter((a) => a.payload.value === 60);
    expect(spike).toHaveLength(1);
    expect(spike[0].payload).toMatchObject({ sourceSeq: seqOf(301), topic: 'plant/tank1/temp' });
    expect(by('flatline').map((a) => a.payload)).toEqual([expect.objectContaining({ sourceSeq: seqOf(306), value: 21.5 })]);
    expect(by('gap').map((a) => a.payload)).toEqual([expect.objectContaining({ sourceSeq: seqOf(306) })]);
    // Nothing else: auto's other reports are silences.
    for (const a of by('auto')) if (a !== spike[0]) expect(a.payload.reason).toMatch(/^no reading for/);
    expect(anomalies.every((a) => a.topic === 'plant/tank1/temp/anomaly')).toBe(true);
    // Ahead of the backlog: the anomalies go in the first batch read once they exist; at most the
    // one batch already in flight while the link was down (retried as it was) goes before them.
    const batchOf = (e: WireEvent) => batches.findIndex((b) => b.includes(e));
    for (const a of anomalies) expect(batchOf(a)).toBeLessThanOrEqual(1);
    const before = received.indexOf(anomalies[0]);
    expect(before === 0 || batchOf(anomalies[0]) === 1).toBe(true);
    expect(received.slice(before, before + anomalies.length)).toEqual(anomalies);
  }, 60_000);
});
