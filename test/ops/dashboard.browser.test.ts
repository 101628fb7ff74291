/**
 * The dashboard in a real browser: a real Gateway on free ports (a simulator driver, an MQTT uplink
 * to a real Mosquitto, a threshold rule), Debian's Chromium driven by playwright-core, readings
 * published over MQTT; the numbers on screen must move. Screenshots (desktop and phone) go to
 * test-artifacts/.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { Gateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/log.js';
import { freePort, type Peer, startMosquitto, tempDir } from '../helpers/peers.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(import.meta.dirname, '../../test-artifacts');
const TOPIC = 'sensors/kitchen/temp';

describe.skipIf(!existsSync(CHROMIUM))('dashboard in Chromium', () => {
  const data = tempDir('sluice-dash-data-');
  const profile = tempDir('sluice-dash-chromium-');
  let gateway: Gateway;
  let context: BrowserContext;
  let page: Page;
  let url: string;
  let mqttUrl: string;
  let cloud: Peer;

  beforeAll(async () => {
    const [mqttPort, httpPort] = [await freePort(), await freePort()];
    mqttUrl = `mqtt://127.0.0.1:${mqttPort}`;
    url = `http://127.0.0.1:${httpPort}/`;
    cloud = await startMosquitto();
    const config = validateConfig({
      gateway: { id: 'gw-dash', dataDir: data.path },
      broker: { listeners: [{ host: '127.0.0.1', port: mqttPort }], allowAnonymous: true },
      analytics: [{ name: 'hot', match: 'sensors/+/temp', field: 'value', detector: { type: 'threshold', high: 50 } }],
      drivers: [
        { name: 'boiler', type: 'simulator', interval: 250, seed: 7, sensors: [{ topic: 'plant/boiler/temp', base: 60, noise: 0.5, unit: '°C' }] },
      ],
      uplinks: [{ name: 'cloud', type: 'mqtt', url: cloud.url }],
      http: { host: '127.0.0.1', port: httpPort },
    });
    gateway = new Gateway(config, { logger: silentLogger });
    await gateway.start();
    context = await chromium.launchPersistentContext(profile.path, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1280, height: 900 },
    });
    page = context.pages()[0] ?? (await context.newPage());
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    await gateway?.stop();
    await cloud?.stop();
    data.cleanup();
    profile.cleanup();
  });

  const text = async (id: string) => (await page.locator(`#${id}`).textContent()) ?? '';
  const number = async (id: string) => Number((await text(id)).replace(/[^0-9.]/g, ''));

  it('shows live numbers that move when readings arrive', async () => {
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    const external: string[] = [];
    page.on('request', (req) => {
      if (!req.url().startsWith(url)) external.push(req.url());
    });

    await page.goto(url);
    await page.locator('#conn', { hasText: 'live' }).waitFor({ timeout: 10_000 });
    await expect.poll(() => text('gw-id')).toBe('gw-dash');
    await expect.poll(() => text('health')).toBe('healthy');
    expect(await page.locator('#problems').isHidden()).toBe(true);
    const received0 = await number('ingest-received');

    const client = await mqtt.connectAsync(mqttUrl, { clientId: 'dash-test', reconnectPeriod: 0 });
    try {
      for (let i = 0; i < 40; i++) {
        await client.publishAsync(TOPIC, JSON.stringify({ value: 20 + Math.sin(i / 3) * 2, unit: '°C' }), { qos: 1 });
        await client.publishAsync('sensors/hall/humidity', String(40 + i), { qos: 1 });
      }
      await expect.poll(() => number('ingest-received'), { timeout: 10_000 }).toBeGreaterThanOrEqual(received0 + 80);
      await expect.poll(() => number('buffer-events'), { timeout: 10_000 }).toBeGreaterThanOrEqual(received0 + 80);
      expect(await text('buffer-bytes')).toMatch(/KiB|B of/);
      expect(await text('buffer-oldest')).toMatch(/ago/);
      // The rate is computed between frames: it becomes positive while readings flow.
      const pub = setInterval(() => void client.publishAsync(TOPIC, JSON.stringify({ value: 21 }), { qos: 1 }), 50);
      try {
        await expect.poll(() => number('ingest-rate'), { timeout: 10_000 }).toBeGreaterThan(0);
      } finally {
        clearInterval(pub);
      }
    } finally {
      await client.endAsync();
    }

    // An anomaly: a reading above the threshold shows up in the count and the recent list.
    expect(await number('anomalies-total')).toBe(0);
    const alarm = await mqtt.connectAsync(mqttUrl, { clientId: 'dash-alarm', reconnectPeriod: 0 });
    await alarm.publishAsync(TOPIC, JSON.stringify({ value: 99 }), { qos: 1 });
    await alarm.endAsync();
    await expect.poll(() => number('anomalies-total'), { timeout: 10_000 }).toBeGreaterThanOrEqual(1);
    await expect.poll(() => text('anomalies-recent')).toContain(TOPIC);
    expect(await text('anomalies-recent')).toMatch(/threshold/);

    // The chart of the chosen topics (the first few by default) draws a line.
    const chart = page.locator(`.chart[data-topic="${TOPIC}"]`);
    await chart.waitFor({ timeout: 10_000 });
    await expect
      .poll(async () => ((await chart.locator('polyline').getAttribute('points')) ?? '').split(' ').length)
      .toBeGreaterThan(1);
    expect(await chart.locator('.value').textContent()).toMatch(/^\d/);
    expect(await number('topic-count')).toBeGreaterThanOrEqual(2);

    // The uplink to Mosquitto: connected, and its delivered count moves.
    const uplink = page.locator('#uplinks tr', { hasText: 'cloud' });
    await expect.poll(() => uplink.textContent()).toMatch(/mqtt\s*connected/);
    await expect.poll(async () => Number((await uplink.locator('td').nth(4).textContent())?.replace(/\D/g, '')), { timeout: 10_000 }).toBeGreaterThan(80);
    // The simulator driver: up, with its last reading.
    const driver = page.locator('#drivers tr', { hasText: 'boiler' });
    await expect.poll(() => driver.textContent()).toMatch(/up/);
    expect(await driver.textContent()).toMatch(/plant\/boiler\/temp = \d+(\.\d+)?/);

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });

    // A phone: no horizontal scrolling of the page itself.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(300);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(1);
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-phone.png'), fullPage: true });

    expect(errors).toEqual([]);
    expect(external).toEqual([]);
  }, 60_000);

  it('says so when the gateway goes away', async () => {
    await gateway.stop();
    await page.locator('#conn', { hasText: /reconnecting|disconnected/ }).waitFor({ timeout: 10_000 });
  }, 20_000);
});
