/**
 * The simulator driver: synthetic sensors with Gaussian noise, a daily cycle, drift, and injected
 * spikes and flatlines, so a gateway shows data flowing (and anomalies firing) with no hardware.
 * With `seed` the sequence is deterministic (tests, benchmarks).
 */
import { DeviceTracker, statusEvent, untilDeadline } from '../device-health.js';
import type { Driver, DriverContext, DriverHealth } from '../driver.js';
import type { SimulatorConfig } from './schema.js';

export class SimulatorDriver implements Driver {
  readonly type = 'simulator';
  private timer?: NodeJS.Timeout;
  private readonly random: () => number;
  private readonly sensors: SensorState[];
  private readonly device = new DeviceTracker('simulator');
  /** The append of the current tick; a tick is skipped while one is pending (back-pressure). */
  private inFlight?: Promise<void>;

  constructor(private readonly config: SimulatorConfig) {
    this.random = config.seed === undefined ? Math.random : mulberry32(config.seed);
    this.sensors = config.sensors.map((s) => ({ ...s, flatLeft: 0, last: s.base }));
  }

  get name(): string {
    return this.config.name;
  }

  async start(ctx: DriverContext): Promise<void> {
    const startedAt = Date.now();
    const source = `${this.type}:${this.config.name}`;
    this.timer = setInterval(() => {
      if (this.inFlight) return;
      const now = Date.now();
      const events = this.sensors.map((s) => {
        const value = this.sample(s, now, startedAt);
        return { source, topic: s.topic, kind: 'reading' as const, ts: now, payload: s.unit ? { value, unit: s.unit } : { value } };
      });
      const last = events[events.length - 1];
      this.device.lastReading = { topic: last.topic, value: last.payload.value, ts: now };
      // A state change adds its status event to the same append.
      const previous = this.device.success(now);
      const batch = previous === undefined ? events : [...events, statusEvent(this, this.device, previous, now)];
      this.inFlight = ctx
        .emit(batch)
        .catch((err: Error) => void this.device.failure('store', `readings not stored: ${err.message}`))
        .finally(() => {
          this.inFlight = undefined;
        });
    }, this.config.interval);
  }

  async stop(deadline: number): Promise<void> {
    clearInterval(this.timer);
    if (this.inFlight) await untilDeadline(this.inFlight, deadline);
    this.device.set('stopped');
  }

  health(): DriverHealth {
    return { name: this.name, type: this.type, devices: [this.device.snapshot()] };
  }

  private sample(s: SensorState, now: number, startedAt: number): number {
    if (s.flatLeft > 0) {
      s.flatLeft--;
      return s.last;
    }
    if (s.flatlineProbability > 0 && this.random() < s.flatlineProbability) {
      s.flatLeft = s.flatlineReadings - 1;
      return s.last;
    }
    const hours = (now - startedAt) / 3_600_000;
    const dayPhase = ((now % 86_400_000) / 86_400_000) * 2 * Math.PI;
    let v = s.base + s.driftPerHour * hours + s.dailyAmplitude * Math.sin(dayPhase) + s.noise * gaussian(this.random);
    if (s.spikeProbability > 0 && this.random() < s.spikeProbability) v += s.spikeSize * (this.random() < 0.5 ? -1 : 1);
    s.last = Math.round(v * 1000) / 1000;
    return s.last;
  }
}

type SensorState = SimulatorConfig['sensors'][number] & { flatLeft: number; last: number };

function gaussian(random: () => number): number {
  // Box-Muller
  const u = 1 - random();
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** A small seeded PRNG (deterministic simulator output for tests). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
