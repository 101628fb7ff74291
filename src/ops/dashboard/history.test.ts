/**
 * History and the alarm list against a real ring log on disk: the newest window is read, the scan
 * is bounded (it answers with its newest stretch and says so), points are thinned to `max`, alarms
 * come back after a restart with their units and acknowledgements, and the routes refuse bad input
 * and cross-site acknowledgements with one sentence.
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { openRingLog } from '../../../buffer/index.js';
import type { RingLog } from '../../../buffer/types.js';
import { tempDir } from '../../../test/helpers/peers.js';
import { bufferSchema } from '../../config/schema.js';
import type { EventInput } from '../../core/event.js';
import { silentLogger } from '../../core/log.js';
import { HttpServer } from '../../core/http-server.js';
import { AlarmList, describe as sentence } from './alarms.js';
import { registerAlarmRoutes, registerHistoryRoute } from './api.js';
import { asScannable, DEFAULT_SCAN_LIMITS, readHistory } from './history.js';
import { cleanupsAfterEach } from '../../../test/helpers/cleanups.js';

// A loaded test machine must not turn the time budget into a flaky result (the event budget is tested).
const UNHURRIED = { ...DEFAULT_SCAN_LIMITS, maxScanMs: 20_000 };

const cleanups = cleanupsAfterEach();

async function openLog(): Promise<{ log: RingLog; dir: string }> {
  const dir = tempDir('sluice-history-');
  const log = await openRingLog({ dir: dir.path, gatewayId: 'gw-h', config: bufferSchema.parse({}), logger: silentLogger });
  cleanups.push(() => dir.cleanup(), () => log.close());
  return { log, dir: dir.path };
}

const anomaly = (topic: string, value: number, sourceTs: number): EventInput => ({
  source: 'analytics',
  kind: 'anomaly',
  topic: `${topic}/anomaly`,
  payload: { rule: 'too-hot', detector: 'threshold', score: 1, reason: `value ${value} is above the high limit 50`, value, topic, sourceSeq: 1, sourceTs },
});

describe('readHistory', () => {
  it('reads a topic from the newest window, with its unit and the anomalies on it', async () => {
    const { log } = await openLog();
    const now = Date.now();
    // 30,000 events of noise on other topics, 100 readings of ours spread among them.
    for (let b = 0; b < 30; b++) {
      const batch: EventInput[] = [];
      for (let i = 0; i < 1000; i++) batch.push({ source: 'mqtt', topic: `noise/${i % 50}`, payload: i });
      // Each batch's readings share one timestamp, 10 ms after the previous batch's (appends can be
      // quicker than a millisecond apart).
      const ts = now - 900 + b * 10;
      batch.push(...Array.from({ length: 3 }, (_, i) => ({ source: 'mqtt', topic: 'tank/temp', ts, payload: { value: b * 3 + i, unit: '°C' } })));
      await log.append(batch);
    }
    await log.append([anomaly('tank/temp', 88, now), anomaly('other/temp', 1, now)]);
    const h = await readHistory(asScannable(log)!, { topic: 'tank/temp', since: now - 3600_000, max: 1000 }, UNHURRIED);
    // One point per millisecond: the three readings of a batch share a timestamp, the newest stays.
    expect(h.points.map((p) => p[1])).toEqual(Array.from({ length: 30 }, (_, i) => i * 3 + 2));
    expect(h.points.every(([ts]) => ts >= now - 1000)).toBe(true);
    expect(h.unit).toBe('°C');
    expect(h.markers).toMatchObject([{ value: 88, rule: 'too-hot', kind: 'anomaly', severity: 'warning' }]);
    expect(h.complete).toBe(true);

    // Thinned to at most `max` time buckets, the newest reading kept.
    const thin = await readHistory(asScannable(log)!, { topic: 'tank/temp', since: now - 1000, now, max: 10 }, UNHURRIED);
    expect(thin.points.length).toBeGreaterThanOrEqual(2);
    expect(thin.points.length).toBeLessThanOrEqual(10);
    expect(thin.thinned).toBe(true);
    expect(thin.points.at(-1)![1]).toBe(89);

    // A topic never seen, and one named after Object.prototype: empty, no error.
    for (const topic of ['nothing/here', 'constructor']) {
      expect((await readHistory(asScannable(log)!, { topic, since: 0, max: 100 }, UNHURRIED)).points).toEqual([]);
    }
  });

  it('stops at its scan budget with the newest stretch, and says it is incomplete', async () => {
    const { log } = await openLog();
    for (let b = 0; b < 10; b++) {
      await log.append(Array.from({ length: 1000 }, (_, i) => ({ source: 'mqtt', topic: 'busy', payload: b * 1000 + i })));
    }
    const h = await readHistory(
      asScannable(log)!,
      { topic: 'busy', since: 0, max: 100_000 },
      { windowEvents: 1000, maxWindowEvents: 1000, maxScanEvents: 3000, maxScanMs: 10_000 },
    );
    expect(h.complete).toBe(false);
    expect(h.scanned).toBeLessThanOrEqual(3072);
    // The newest events, not the oldest.
    expect(h.points.at(-1)![1]).toBe(9999);
    expect(h.points[0][1]).toBeGreaterThanOrEqual(7000);
  });
});

describe('AlarmList', () => {
  it('lists newest first in words with unit, and keeps acknowledgements and alarms across a restart', async () => {
    const { log, dir } = await openLog();
    const file = `${dir}/dashboard-acks.json`;
    const units = new Map([['tank/temp', '°C']]);
    const list = new AlarmList({ file, unitOf: (t) => units.get(t) });
    await log.append([{ source: 'mqtt', topic: 'tank/temp', payload: { value: 20, unit: '°C' } }]);
    for (const v of [60, 70, 80]) {
      const derived = [anomaly('tank/temp', v, Date.now())];
      const r = await log.append(derived);
      list.observe(derived, r.firstSeq);
    }
    const { alarms, unacknowledged } = list.list();
    expect(alarms.map((a) => a.value)).toEqual([80, 70, 60]);
    expect(unacknowledged).toBe(3);
    expect(alarms[0]).toMatchObject({ rule: 'too-hot', severity: 'warning', unit: '°C', text: 'tank/temp is above its limit at 80 °C.' });
    expect(await list.ack([alarms[0].id, 999_999])).toBe(1);
    expect(JSON.parse(readFileSync(file, 'utf8')).acks).toHaveLength(1);

    // A new process: acknowledgements from the file, alarms and their unit from the log.
    const again = new AlarmList({ file });
    await again.load();
    await again.seed(asScannable(log)!);
    const back = again.list();
    expect(back.alarms.map((a) => [a.value, a.unit, a.acked !== null])).toEqual([
      [80, '°C', true],
      [70, '°C', false],
      [60, '°C', false],
    ]);
    expect(back.unacknowledged).toBe(2);
  });

  it('describes rules alarms and detectors in one sentence', () => {
    expect(sentence({ topic: 'p/level', detector: 'zscore', value: 3.14159, reason: 'value 3.1 is 9.0 robust standard deviations below the median 7' }, 'anomaly', 'm')).toBe(
      'p/level is unusually low at 3.14 m.',
    );
    expect(sentence({ topic: 'p/flow', detector: 'gap', reason: 'no reading for 30.0 s (expected every 1.0 s)' }, 'anomaly', null)).toBe(
      'p/flow went silent (no reading for 30.0 s (expected every 1.0 s)).',
    );
    expect(sentence({ rule: 'door-open-long', sourceTopic: 'door/1', severity: 'critical' }, 'alarm', null)).toBe(
      'Rule door-open-long raised an alarm on door/1.',
    );
  });
});

function call(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<{ status: number; body: { error?: string; [k: string]: unknown } }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('history and alarm routes', () => {
  it('answer bounded queries, and take acknowledgements only as same-origin JSON', async () => {
    const { log } = await openLog();
    const list = new AlarmList();
    const derived = [anomaly('tank/temp', 99, Date.now())];
    list.observe(derived, (await log.append(derived)).firstSeq);
    await log.append([{ source: 'mqtt', topic: 'tank/temp', payload: 21 }]);
    const http = new HttpServer(silentLogger);
    registerHistoryRoute(http, () => asScannable(log), { maxPoints: 500 });
    registerAlarmRoutes(http, list);
    await http.listen('127.0.0.1', 0);
    cleanups.push(() => http.close());
    const port = http.address!.port;

    const ok = await call(port, 'GET', '/api/history?topic=tank%2Ftemp&since=15m&max=50');
    expect(ok.status).toBe(200);
    expect(ok.body.points).toHaveLength(1);
    expect(ok.body.markers).toHaveLength(1);
    for (const [q, msg] of [
      ['', /say which topic/],
      ['topic=a&since=soon', /not a duration/],
      ['topic=a&since=30d', /at most 24 h/],
      ['topic=a&max=100000', /max must be/],
    ] as const) {
      const bad = await call(port, 'GET', `/api/history?${q}`);
      expect(bad.status).toBe(400);
      expect(bad.body.error).toMatch(msg);
    }

    const id = list.list().alarms[0].id;
    const body = JSON.stringify({ ids: [id] });
    const host = `127.0.0.1:${port}`;
    expect((await call(port, 'POST', '/api/alarms/ack', { 'content-type': 'text/plain', host }, body)).status).toBe(415);
    const foreign = await call(port, 'POST', '/api/alarms/ack', { 'content-type': 'application/json', origin: 'http://evil.example', host }, body);
    expect(foreign.status).toBe(403);
    const fetchSite = await call(port, 'POST', '/api/alarms/ack', { 'content-type': 'application/json', 'sec-fetch-site': 'cross-site', host }, body);
    expect(fetchSite.status).toBe(403);
    expect((await call(port, 'POST', '/api/alarms/ack', { 'content-type': 'application/json', host }, '{"ids":"all"}')).status).toBe(400);
    expect(list.list().unacknowledged).toBe(1);
    const same = await call(port, 'POST', '/api/alarms/ack', { 'content-type': 'application/json', origin: `http://${host}`, host }, body);
    expect(same).toMatchObject({ status: 200, body: { acknowledged: 1, unacknowledged: 0 } });
    expect((await call(port, 'GET', '/api/alarms')).body.alarms).toMatchObject([{ id, acked: {} }]);
  });
});
