/**
 * Prometheus metrics of the field devices, read from the drivers' `health()` at scrape time (no
 * work on the poll path): whether each device is up, its consecutive failures, failures by reason
 * since the driver started, and the time of its last success. Labels come from the config (driver
 * and device names) and the drivers' fixed reason vocabulary, so cardinality is bounded. Every
 * metric is reset and set again at each scrape, so a removed driver disappears from the output; the
 * `_total` ones are counters (they restart from 0 with their driver, which Prometheus reads as a reset).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { DeviceState, DriverHealth } from './driver.js';

/** Every state a device can be in: `sluice_driver_device_state` has one series per state, always. */
const STATES: readonly DeviceState[] = ['starting', 'up', 'degraded', 'down', 'stopped'];

export function registerDriverMetrics(registry: Registry, drivers: () => readonly DriverHealth[]): void {
  const registers = [registry];
  const each = (f: (d: DriverHealth, dev: DriverHealth['devices'][number]) => void) => {
    for (const d of drivers()) for (const dev of d.devices) f(d, dev);
  };
  new Gauge({
    name: 'sluice_driver_device_up',
    help: '1 when the field device answers (state up), 0 otherwise (starting, degraded, down, stopped).',
    labelNames: ['driver', 'type', 'device'],
    registers,
    collect() {
      this.reset();
      each((d, dev) => this.set({ driver: d.name, type: d.type, device: dev.device }, dev.state === 'up' ? 1 : 0));
    },
  });
  // A state set: the series stay the same whatever the state, so a state change is a value change
  // (a label that changed with the state would end one series and start another).
  new Gauge({
    name: 'sluice_driver_device_state',
    help: 'The device state: 1 on the series of the current state, 0 on the others.',
    labelNames: ['driver', 'device', 'state'],
    registers,
    collect() {
      this.reset();
      each((d, dev) => {
        for (const state of STATES) this.set({ driver: d.name, device: dev.device, state }, dev.state === state ? 1 : 0);
      });
    },
  });
  new Gauge({
    name: 'sluice_driver_device_consecutive_failures',
    help: 'Failed polls or opens in a row.',
    labelNames: ['driver', 'device'],
    registers,
    collect() {
      this.reset();
      each((d, dev) => this.set({ driver: d.name, device: dev.device }, dev.consecutiveFailures));
    },
  });
  new Counter({
    name: 'sluice_driver_device_failures_total',
    help: 'Failures since the driver started, by reason (timeout, exception, crc, checksum, garbage, ...).',
    labelNames: ['driver', 'device', 'reason'],
    registers,
    collect() {
      this.reset();
      each((d, dev) => {
        for (const [reason, n] of Object.entries(dev.failures)) this.inc({ driver: d.name, device: dev.device, reason }, n);
      });
    },
  });
  new Gauge({
    name: 'sluice_driver_device_last_success_timestamp_seconds',
    help: 'When the device last answered (epoch seconds); absent until it has.',
    labelNames: ['driver', 'device'],
    registers,
    collect() {
      this.reset();
      each((d, dev) => {
        if (dev.lastSuccessTs !== null) this.set({ driver: d.name, device: dev.device }, dev.lastSuccessTs / 1000);
      });
    },
  });
}

/** `sluice_device_writes_total{outcome}`: write attempts since the start, by outcome (bounded: four outcomes). */
export function registerWriteMetrics(registry: Registry, counts: () => Record<string, number>): void {
  new Counter({
    name: 'sluice_device_writes_total',
    help: 'Writes to devices since the gateway started, by outcome (accepted, verified, refused, failed).',
    labelNames: ['outcome'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [outcome, n] of Object.entries(counts())) this.inc({ outcome }, n);
    },
  });
}
