/**
 * Protocol fuzzing of the gateway's broker: ≥ 100k random and mutated MQTT packets over
 * many concurrent connections, while a good client publishes QoS 1 alongside. The gateway (a child
 * process, so its memory is its own) stays healthy, its RssAnon stays under 150 MB, nothing
 * malformed is stored, and every acknowledged good message reaches the upstream broker.
 *
 * SLUICE_FUZZ_CASES (default 100000) and SLUICE_FUZZ_SEED (default: random, printed) tune a run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/gateway.js';
import { type ChildGateway, startChildGateway } from './child-gateway.js';
import { runFuzz } from './mqtt-fuzz.js';
import { GoodPublisher, Upstream } from './oracle.js';
import { record } from './report.js';

const CASES = Number(process.env.SLUICE_FUZZ_CASES ?? 100_000);
const SEED = Number(process.env.SLUICE_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const RSS_LIMIT_KB = 150 * 1024;

describe('broker protocol fuzzing', () => {
  let upstream: Upstream;
  let gw: ChildGateway;

  beforeAll(async () => {
    upstream = await Upstream.start();
    gw = await startChildGateway({
      uplinks: [{ name: 'cloud', type: 'mqtt', url: upstream.url, batch: { maxEvents: 2000 } }],
      buffer: { maxBytes: '128MiB', commitInterval: '2ms' },
    });
  });

  afterAll(async () => {
    await gw?.stop();
    gw?.cleanup();
    await upstream?.stop();
  });

  it(`survives ${CASES} fuzz cases, keeps every acknowledged good message, stays under 150 MB`, async () => {
    const good = new GoodPublisher(`mqtt://127.0.0.1:${gw.mqttPort}`, {
      prefix: 'good',
      topic: 'sensors/good/temp',
      window: 5,
    });
    await good.start();

    let healthChecks = 0;
    let unhealthy = 0;
    let polling = true;
    const poller = (async () => {
      while (polling) {
        healthChecks++;
        const code = await gw.healthz().catch(() => 0);
        if (code !== 200) unhealthy++;
        await new Promise((r) => setTimeout(r, 1000));
      }
    })();

    const t0 = Date.now();
    const fuzz = await runFuzz({ port: gw.mqttPort, cases: CASES, concurrency: 100, seed: SEED, deadlineMs: 240_000 });
    const fuzzMs = Date.now() - t0;
    polling = false;
    await poller;
    await good.stop();

    // Every acknowledged good message reaches the cloud.
    await waitFor(() => upstream.verdict(good.acked).lost === 0, 60_000, 'every acknowledged message upstream').catch(
      () => {},
    );
    const verdict = upstream.verdict(good.acked);
    const status = await gw.status();
    const processed = fuzz.survived + fuzz.closedBy;
    const rss = gw.peakRssKb;

    record('fuzz', {
      cases: processed,
      acknowledged: verdict.acknowledged,
      delivered: verdict.delivered,
      lost: verdict.lost,
      duplicates: verdict.duplicates,
      peakRssKb: rss,
      seed: SEED,
      connections: fuzz.connections,
      casesSent: fuzz.casesSent,
      survivedCases: fuzz.survived,
      refusedCases: fuzz.closedBy,
      stalledConnections: fuzz.stalled,
      seconds: Math.round(fuzzMs / 1000),
      healthChecks,
      unhealthy,
      rejectedByReason: status.ingest.rejectedByReason,
    });

    expect(processed, `seed ${SEED}`).toBeGreaterThanOrEqual(CASES);
    expect(unhealthy, 'failed /healthz checks during the fuzz').toBe(0);
    expect(await gw.healthz()).toBe(200);
    expect(gw.process.exitCode).toBeNull();
    expect(rss, 'peak RssAnon (KiB)').toBeLessThan(RSS_LIMIT_KB);
    expect(verdict.acknowledged).toBeGreaterThan(100);
    expect(verdict.lost, `missing: ${verdict.missing.join(', ')}`).toBe(0);
    expect(verdict.outOfOrder).toBe(0);
    // Malformed input was refused and counted, not stored.
    expect(status.ingest.rejectedByReason.malformed ?? 0).toBeGreaterThan(0);
    const bad = upstream.events.filter(
      (e) => /[+#\u0000\ufffd]/.test(e.topic) || e.topic.startsWith('$') || e.topic === '',
    );
    expect(bad.map((e) => e.topic).slice(0, 5)).toEqual([]);
  });
});
