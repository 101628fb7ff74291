/**
 * The dashboard in a real browser: a real Gateway on free ports (a simulator driver, an MQTT uplink
 * to a real Mosquitto and one to a closed port, a threshold rule), Debian's Chromium driven by
 * playwright-core, readings published over MQTT. Checked on screen: history drawn on a new viewer's
 * chart, alarms newest first with rule, severity, value and unit, acknowledgement kept across a
 * restart, topics named `constructor`/`toString`, no horizontal overflow at 390 px, and a
 * "disconnected, stale since" banner when the gateway stops. Screenshots go to test-artifacts/.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { Gateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/core/log.js';
import { freePort, type Peer, startMosquitto, tempDir } from '../helpers/peers.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(import.meta.dirname, '../../test-artifacts');
const TOPIC = 'sensors/kitchen/temp';

describe.skipIf(!existsSync(CHROMIUM))('dashboard in Chromium', () => {
  const data = tempDir('sluice-dash-data-');
  const profile = tempDir('sluice-dash-chromium-');
  let gateway: Gateway;
  let config: ReturnType<typeof validateConfig>;
  let context: BrowserContext;
  let page: Page;
  let url: string;
  let mqttUrl: string;
  let cloud: Peer;
  const errors: string[] = [];
  const external: string[] = [];

  beforeAll(async () => {
    const [mqttPort, httpPort, closedPort] = [await freePort(), await freePort(), await freePort()];
    mqttUrl = `mqtt://127.0.0.1:${mqttPort}`;
    url = `http://127.0.0.1:${httpPort}/`;
    cloud = await startMosquitto();
    config = validateConfig({
      gateway: { id: 'gw-dash', dataDir: data.path },
      broker: { listeners: [{ host: '127.0.0.1', port: mqttPort }], allowAnonymous: true },
      analytics: [{ name: 'kitchen-too-hot', match: 'sensors/+/temp', field: 'value', detector: { type: 'threshold', high: 50 } }],
      drivers: [
        { name: 'boiler', type: 'simulator', interval: 250, seed: 7, sensors: [{ topic: 'plant/boiler/temp', base: 60, noise: 0.5, unit: '°C' }] },
      ],
      uplinks: [
        { name: 'cloud', type: 'mqtt', url: cloud.url },
        { name: 'offsite', type: 'mqtt', url: `mqtt://127.0.0.1:${closedPort}` },
      ],
      http: { host: '127.0.0.1', port: httpPort },
    });
    gateway = new Gateway(config, { logger: silentLogger });
    await gateway.start();

    // Before any viewer: a minute of readings (history), two alarms, and topics that are names of
    // Object.prototype members.
    const client = await mqtt.connectAsync(mqttUrl, { clientId: 'dash-seed', reconnectPeriod: 0 });
    for (let i = 0; i < 60; i++) {
      await client.publishAsync(TOPIC, JSON.stringify({ value: 20 + Math.sin(i / 5) * 2, unit: '°C' }), { qos: 1 });
      // History keeps one point per millisecond, and a durable PUBACK can now come back sooner.
      await new Promise((r) => setTimeout(r, 3));
    }
    await client.publishAsync(TOPIC, JSON.stringify({ value: 99, unit: '°C' }), { qos: 1 });
    await client.publishAsync(TOPIC, JSON.stringify({ value: 21, unit: '°C' }), { qos: 1 });
    await client.publishAsync(TOPIC, JSON.stringify({ value: 120.5, unit: '°C' }), { qos: 1 });
    for (const t of ['constructor', 'toString', '__proto__']) await client.publishAsync(t, '7', { qos: 1 });
    await client.publishAsync(TOPIC, JSON.stringify({ value: 22, unit: '°C' }), { qos: 1 });
    await client.endAsync();

    context = await chromium.launchPersistentContext(profile.path, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1280, height: 900 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(msg.text());
    });
    page.on('request', (req) => {
      if (!req.url().startsWith(url)) external.push(req.url());
    });
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    await gateway?.stop();
    await cloud?.stop();
    data.cleanup();
    profile.cleanup();
  });

  const text = async (sel: string) => (await page.locator(sel).first().textContent()) ?? '';
  const number = async (sel: string) => Number((await text(sel)).replace(/[^0-9.]/g, ''));
  const chart = (topic: string) => page.locator(`.chart[data-topic="${topic}"]`);

  it('a new viewer sees history on the chart, alarms newest first, liveness and condition apart', async () => {
    await page.goto(`${url}#topics=${encodeURIComponent(`${TOPIC},constructor,toString`)}`);
    await page.locator('#conn', { hasText: 'live' }).waitFor({ timeout: 10_000 });
    await expect.poll(() => text('#gw-id')).toBe('gw-dash');
    await expect.poll(() => text('#health')).toBe('alive');
    // The offsite uplink is down with events waiting: degraded, with the reason readable.
    await expect.poll(() => text('#condition'), { timeout: 15_000 }).toBe('degraded');
    expect(await text('#reasons')).toMatch(/uplink offsite is down with \d+ events waiting/);

    // History: the chart holds the readings published before the page opened (60 in a few seconds;
    // the live feed alone gives at most one per second), with the alarm markers drawn on it.
    const kitchen = chart(TOPIC);
    await expect.poll(async () => Number(await kitchen.getAttribute('data-history')), { timeout: 10_000 }).toBeGreaterThanOrEqual(40);
    await expect.poll(async () => Number(await kitchen.getAttribute('data-points'))).toBeGreaterThanOrEqual(40);
    await expect.poll(async () => Number(await kitchen.getAttribute('data-markers'))).toBeGreaterThanOrEqual(2);
    expect(await kitchen.locator('.value').textContent()).toMatch(/°C$/);
    const painted = await kitchen.locator('canvas').evaluate((c: HTMLCanvasElement) => {
      const ctx = c.getContext('2d')!;
      const { data: px } = ctx.getImageData(Math.floor(c.width * 0.3), 0, Math.floor(c.width * 0.6), c.height);
      let n = 0;
      for (let i = 3; i < px.length; i += 4) if (px[i] > 0) n++;
      return n;
    });
    expect(painted).toBeGreaterThan(200);
    // Axes: time labels on x, the unit on y.
    expect(await kitchen.locator('.u-axis').count()).toBe(2);
    expect(await kitchen.textContent()).toContain('°C');

    // Topics named after Object.prototype members chart like any other.
    await expect.poll(async () => Number(await chart('constructor').getAttribute('data-points'))).toBeGreaterThanOrEqual(1);
    await expect.poll(async () => Number(await chart('toString').getAttribute('data-points'))).toBeGreaterThanOrEqual(1);
    expect(await text('#topics')).toContain('__proto__');

    // Alarms: newest first, in words, with rule, severity, value and unit.
    const first = page.locator('#alarms li').first();
    await expect.poll(() => first.textContent(), { timeout: 10_000 }).toContain('120.5 °C');
    expect(await first.textContent()).toMatch(/sensors\/kitchen\/temp is above its limit at 120\.5 °C/);
    expect(await first.textContent()).toMatch(/rule kitchen-too-hot/);
    expect(await first.locator('.sev').textContent()).toBe('warning');
    expect(await page.locator('#alarms li').nth(1).textContent()).toContain('99 °C');
    expect(await number('#alarms-open')).toBe(2);

    // The broker view: clients and the busiest topics.
    await expect.poll(() => text('#topic-rates'), { timeout: 10_000 }).toContain('plant/boiler/temp');

    // Acknowledge the newest: it stays in the list, marked, and the file in the data dir has it.
    await first.locator('button').click();
    await expect.poll(() => first.textContent()).toMatch(/acknowledged/);
    expect(await number('#alarms-open')).toBe(1);
    const id = Number(await first.getAttribute('data-id'));
    expect(JSON.parse(readFileSync(join(data.path, 'dashboard-acks.json'), 'utf8')).acks.map((a: number[]) => a[0])).toEqual([id]);

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });
  }, 60_000);

  // The page re-renders every status frame; a check can land mid-render (retried, not hidden).
  it('fits a phone: no horizontal overflow, uplinks as cards with the reason readable', { timeout: 20_000, retry: 2 }, async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(500);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    const offsite = page.locator('#uplinks tr', { hasText: 'offsite' });
    expect(await offsite.locator('td').first().evaluate((td) => getComputedStyle(td).display)).toBe('flex');
    const reason = offsite.locator('td.err');
    await expect.poll(() => reason.textContent(), { timeout: 10_000 }).not.toBe('');
    const box = (await reason.boundingBox())!;
    expect(box.x).toBeGreaterThanOrEqual(0);
    expect(box.x + box.width).toBeLessThanOrEqual(390);
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-phone.png'), fullPage: true });
  });

  it('says "disconnected, stale since" when the gateway stops, and comes back with it', async () => {
    await gateway.stop();
    await page.locator('#stale', { hasText: /stale since/ }).waitFor({ timeout: 10_000 });
    expect(await text('#conn')).toMatch(/reconnecting|disconnected/);
    expect(await text('#condition')).toBe('unknown');
    expect(await text('#health')).toBe('unknown');
    expect(await page.locator('#problems').isHidden()).toBe(true);
    expect(await page.evaluate(() => document.body.classList.contains('stale'))).toBe(true);
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-phone-disconnected.png'), fullPage: false });

    // Restarted on the same data: the page reconnects by itself, the alarms are read back from the
    // log and the acknowledgement from the data dir.
    gateway = new Gateway(config, { logger: silentLogger });
    await gateway.start();
    await page.locator('#conn', { hasText: 'live' }).waitFor({ timeout: 15_000 });
    expect(await page.locator('#stale').isHidden()).toBe(true);
    const first = page.locator('#alarms li').first();
    await expect.poll(() => first.textContent(), { timeout: 10_000 }).toContain('120.5 °C');
    expect(await first.textContent()).toMatch(/acknowledged/);
    expect(await number('#alarms-open')).toBe(1);

    expect(errors).toEqual([]);
    expect(external).toEqual([]);
  }, 40_000);
});
