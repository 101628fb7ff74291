import { describe, expect, it } from 'vitest';
import { parseExposition } from '../../test/helpers/prom-text.js';
import { FastHistogram } from '../core/histogram.js';
import { VERSION } from '../core/version.js';
import { GatewayMetrics } from './metrics.js';

describe('gateway metrics', () => {
  it('parse strictly: no blank lines, no gauge named _total, defaults and build info present', async () => {
    const m = new GatewayMetrics({ log: () => undefined, brokerClients: () => 3 });
    m.ingested.inc({ source: 'mqtt' }, 2);
    m.commitSeconds.observe(0.0004);
    m.pubackSeconds.observe(0.0004, 10);
    m.pubackSeconds.observe(0.02, 5);
    const text = await m.text();
    expect(text).not.toMatch(/\n\n/);
    const families = parseExposition(text);
    // prom-client's own nodejs_active_*_total are gauges by its long-standing names; ours never are.
    for (const f of families.values()) {
      if (f.name.startsWith('sluice_') && f.name.endsWith('_total')) expect(f.type, f.name).toBe('counter');
    }
    expect(families.get('process_cpu_user_seconds_total')?.type).toBe('counter');
    expect(families.has('nodejs_eventloop_lag_seconds')).toBe(true);
    expect(families.get('sluice_build_info')?.samples[0]).toMatchObject({ labels: { version: VERSION }, value: 1 });
    expect(families.get('sluice_broker_clients')?.samples[0].value).toBe(3);
    const puback = families.get('sluice_broker_puback_seconds')!;
    expect(puback.type).toBe('histogram');
    const bucket = (le: string) => puback.samples.find((s) => s.name.endsWith('_bucket') && s.labels.le === le)?.value;
    expect(bucket('0.0005')).toBe(10);
    expect(bucket('0.025')).toBe(15);
    expect(bucket('+Inf')).toBe(15);
    expect(puback.samples.find((s) => s.name === 'sluice_broker_puback_seconds_count')?.value).toBe(15);
    expect(puback.samples.find((s) => s.name === 'sluice_broker_puback_seconds_sum')?.value).toBeCloseTo(0.104, 6);
  });

  it('a labelled histogram keeps one series per label value and drops only its own', async () => {
    const m = new GatewayMetrics({ log: () => undefined, brokerClients: () => undefined });
    const h = FastHistogram.on(m.registry, 'sluice_test_seconds', 'test', [0.1, 1], 'uplink');
    expect(FastHistogram.on(m.registry, 'sluice_test_seconds', 'test', [0.1, 1], 'uplink')).toBe(h);
    const a = h.child('a');
    a.observe(0.05);
    a.observe(5);
    h.child('b').observe(0.5);
    let f = parseExposition(await m.text()).get('sluice_test_seconds')!;
    expect(f.samples.filter((s) => s.labels.uplink === 'a' && s.name.endsWith('_bucket')).map((s) => [s.labels.le, s.value])).toEqual([
      ['0.1', 1],
      ['1', 1],
      ['+Inf', 2],
    ]);
    h.remove('a', h.child('b'));
    h.remove('b');
    f = parseExposition(await m.text()).get('sluice_test_seconds')!;
    expect(new Set(f.samples.map((s) => s.labels.uplink))).toEqual(new Set(['a']));
  });
});
