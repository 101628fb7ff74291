import { describe, expect, it } from 'vitest';
import { PUMP_SENSORS, simulatedPump } from '../../../test/helpers/pump.js';
import { createVectorDetector } from './index.js';
import { MultivariateDetector } from './multivariate.js';

const vector = (r: Record<string, number>) => PUMP_SENSORS.map((k) => r[k]);

describe('multivariate', () => {
  it('finds a correlation break no single sensor shows, names the sensor, and keeps alarming', () => {
    const pump = simulatedPump(7);
    // The warm-up spans two cycles of the pump's load: what it has not seen, it cannot call normal.
    const d = new MultivariateDetector(PUMP_SENSORS.length, { warmup: 240 });
    const normal: number[][] = [];
    const alarms: number[] = [];
    for (let i = 0; i < 1500; i++) {
      const v = vector(pump(i));
      normal.push(v);
      if (d.processVector(v, i * 1000)) alarms.push(i);
      expect(d.lastScore).toBeGreaterThanOrEqual(0);
      expect(d.lastScore).toBeLessThanOrEqual(1);
    }
    // In control: about one false alarm per 1 / (1 − confidence) = 1000 readings, at most.
    expect(alarms.length).toBeLessThanOrEqual(2);
    const faulty: number[][] = [];
    let first: ReturnType<MultivariateDetector['processVector']> = null;
    let firstAt = -1;
    let alarmed = 0;
    for (let i = 1500; i < 2100; i++) {
      const v = vector(pump(i, true));
      faulty.push(v);
      const a = d.processVector(v, i * 1000);
      if (a && !first) {
        first = a;
        firstAt = i;
      }
      if (d.lastScore >= 0.5) alarmed++;
    }
    // No sensor leaves its own normal range...
    for (let k = 0; k < PUMP_SENSORS.length; k++) {
      const lo = Math.min(...normal.map((v) => v[k]));
      const hi = Math.max(...normal.map((v) => v[k]));
      const flo = Math.min(...faulty.map((v) => v[k]));
      const fhi = Math.max(...faulty.map((v) => v[k]));
      expect(flo).toBeGreaterThanOrEqual(lo - 0.05 * (hi - lo));
      expect(fhi).toBeLessThanOrEqual(hi + 0.05 * (hi - lo));
    }
    // ...yet the vector is found within a minute, flow named first, and the fault is not learned away.
    expect(first).not.toBeNull();
    expect(firstAt - 1500).toBeLessThan(60);
    const c = first!.contributions;
    expect(c.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 3);
    expect(c.indexOf(Math.max(...c))).toBe(PUMP_SENSORS.indexOf('flow'));
    expect(alarmed / 600).toBeGreaterThan(0.7);
  });

  it('survives a snapshot through JSON and judges as before', () => {
    const pump = simulatedPump(3);
    const a = new MultivariateDetector(5);
    for (let i = 0; i < 400; i++) a.processVector(vector(pump(i)), i);
    const b = createVectorDetector('multivariate', 5);
    b.restore(JSON.parse(JSON.stringify(a.snapshot())));
    for (let i = 400; i < 500; i++) {
      const v = vector(pump(i, i > 450));
      a.processVector(v, i);
      b.processVector(v, i);
      // The restored one rebuilds its inverse at once, the other on its cadence: near, not equal.
      expect(Math.abs(b.lastScore - a.lastScore)).toBeLessThan(0.05);
      expect(b.lastScore >= 0.5).toBe(a.lastScore >= 0.5);
    }
    expect(() => b.restore({ type: 'multivariate', size: 4, state: {} })).toThrow(/5-variable/);
  });

  it('refuses a vector of the wrong length or with a non-number, and stays bounded', () => {
    const d = new MultivariateDetector(3);
    expect(() => d.processVector([1, 2], 0)).toThrow(/expected 3/);
    expect(() => d.processVector([1, Number.NaN, 2], 0)).toThrow(/not a finite/);
    const size = JSON.stringify(d.snapshot()).length;
    for (let i = 0; i < 5000; i++) d.processVector([i % 7, Math.sin(i), i % 3], i);
    expect(JSON.stringify(d.snapshot()).length).toBeLessThan(size + 2000);
  });

  it('handles a constant variable and a single variable', () => {
    const d = new MultivariateDetector(2);
    for (let i = 0; i < 200; i++) d.processVector([5, Math.sin(i / 3)], i);
    expect(d.lastScore).toBeLessThan(0.5);
    expect(d.processVector([6, 0], 200)).not.toBeNull();
    const one = new MultivariateDetector(1);
    for (let i = 0; i < 200; i++) one.processVector([Math.sin(i / 3)], i);
    expect(one.processVector([40], 200)?.contributions).toEqual([1]);
  });
});
