/**
 * The Modbus TCP and RTU driver: polls each device's register map at its interval and emits one
 * reading per point (`{value, unit}`), through the bus shared by every device on the port.
 *
 * Guarantees: a device fault never ends polling. Each device has its own loop and circuit breaker:
 * after `downAfter` failed polls it is `down`, its last values are re-emitted once with
 * `quality: "stale"`, and it is probed with exponential backoff (up to `maxBackoff`) until it
 * answers, when it is `up` again by itself. An exception response marks the device `degraded` (it
 * answers, but a part of its map is refused) and is not retried within the poll; timeouts and bad
 * frames are retried `retries` times. Failures are counted per device and reason. `stop` ends the
 * loops and closes the port by its deadline, even with a request in flight.
 */
import type { EventInput } from '../../src/core/event.js';
import { DeviceTracker, Sleeper, statusEvent, untilDeadline } from '../device-health.js';
import type { Driver, DriverContext, DriverHealth, WritablePoint, WriteOutcome } from '../driver.js';
import type { WriteValue } from '../write/schema.js';
import { acquireBus, type BusTarget, type ModbusBus, type ModbusFailure, releaseBus } from './bus.js';
import { decodeRegisters, encodeValue, type PlannedPoint, planRequests, type ReadRequest, scaleValue } from './plan.js';
import type { ModbusConfig, ModbusDeviceConfig } from './schema.js';

interface Reported {
  value: number | boolean | null;
  ts: number;
  stale: boolean;
}

interface DeviceRun {
  cfg: ModbusDeviceConfig;
  tracker: DeviceTracker;
  requests: ReadRequest[];
  /** The last reported value per point (report-on-change compares with it; `down` re-emits it as stale). */
  reported: Map<PlannedPoint, Reported>;
}

export class ModbusDriver implements Driver {
  readonly name: string;
  readonly type: string;
  private readonly source: string;
  private readonly devices: DeviceRun[];
  private readonly sleeper = new Sleeper();
  private bus?: ModbusBus;
  private ctx?: DriverContext;
  private loops: Promise<void>[] = [];
  private stopping = false;

  constructor(private readonly config: ModbusConfig) {
    this.name = config.name;
    this.type = config.type;
    this.source = `${config.type}:${config.name}`;
    this.devices = config.devices.map((cfg) => ({
      cfg,
      tracker: new DeviceTracker(cfg.name ?? `unit-${cfg.unitId}`, cfg.downAfter),
      requests: planRequests(cfg, (p) => `modbus/${config.name}/${cfg.unitId}/${p.name}`),
      reported: new Map(),
    }));
  }

  /** Requests per poll of each device (for tests and the benchmark: shows the coalescing). */
  get requestsPerPoll(): number[] {
    return this.devices.map((d) => d.requests.length);
  }

  async start(ctx: DriverContext): Promise<void> {
    this.ctx = ctx;
    const c = this.config;
    const target: BusTarget =
      c.type === 'modbus-tcp'
        ? { kind: 'tcp', host: c.host, port: c.port }
        : {
            kind: 'rtu',
            path: c.path,
            baudRate: c.baudRate,
            parity: c.parity,
            dataBits: c.dataBits,
            stopBits: c.stopBits,
          };
    this.bus = acquireBus(target);
    // Stagger the devices of one bus over the first interval so their polls do not all queue at once.
    this.loops = this.devices.map((d, i) => this.run(d, (i * Math.min(d.cfg.interval, 1000)) / this.devices.length));
  }

  async stop(deadline: number): Promise<void> {
    this.stopping = true;
    this.sleeper.abort();
    // Leave a little of the budget for closing the port.
    await untilDeadline(Promise.all(this.loops), deadline - 200);
    if (this.bus) await untilDeadline(releaseBus(this.bus), deadline);
    this.bus = undefined;
    for (const d of this.devices) d.tracker.set('stopped');
  }

  health(): DriverHealth {
    return { name: this.name, type: this.type, devices: this.devices.map((d) => d.tracker.snapshot()) };
  }

  writablePoints(): WritablePoint[] {
    return this.devices.flatMap((d) =>
      d.cfg.points.flatMap((p) => (p.writable ? [{ point: p.name, device: d.tracker.device, writable: p.writable }] : [])),
    );
  }

  /** One write request (no retry: a write that timed out may have been applied), then the read-back. */
  async write(point: string, value: WriteValue, verify: boolean): Promise<WriteOutcome> {
    const bus = this.bus;
    if (!bus) throw new Error(`driver "${this.name}" is not running`);
    for (const dev of this.devices) {
      const planned = dev.requests.flatMap((r) => r.points).find((p) => p.config.name === point && p.config.writable);
      if (!planned) continue;
      if (typeof value !== 'number' && typeof value !== 'boolean') throw new Error(`${planned.config.table} point "${point}" takes a number or a boolean`);
      const data = encodeValue(planned, value);
      const { unitId, timeout } = dev.cfg;
      const table = planned.config.table as 'coil' | 'holding';
      try {
        await bus.write(table, unitId, planned.config.address, data, timeout);
        if (!verify) return {};
        const back = await bus.read(table, unitId, planned.config.address, planned.width, timeout);
        const raw = table === 'coil' ? (back as boolean[])[0] === true : decodeRegisters(planned, back as number[], planned.config.address);
        return { readBack: scaleValue(planned, raw) };
      } catch (err) {
        const f = err as ModbusFailure;
        throw new Error(`${dev.tracker.device} ${f.reason === 'exception' ? 'refused the write' : 'did not take the write'}: ${f.message}`);
      }
    }
    throw new Error(`no writable point "${point}" in driver "${this.name}"`);
  }

  private async run(dev: DeviceRun, initialDelay: number): Promise<void> {
    if (initialDelay > 0) await this.sleeper.sleep(initialDelay);
    while (!this.stopping) {
      const started = Date.now();
      try {
        await this.poll(dev);
      } catch (err) {
        // Nothing in poll should throw; if it does, the loop must survive it.
        dev.tracker.count('internal', (err as Error).message);
        this.ctx?.logger.error(
          { err, driver: this.name, device: dev.tracker.device },
          'modbus poll failed unexpectedly',
        );
      }
      if (this.stopping) break;
      await this.sleeper.sleep(this.nextDelay(dev, started));
    }
  }

  private nextDelay(dev: DeviceRun, started: number): number {
    const { interval, maxBackoff, downAfter } = dev.cfg;
    if (dev.tracker.state === 'down') {
      // Circuit breaker open: probe at interval × 2^k (k = polls failed since down), capped, with jitter.
      const k = Math.min(dev.tracker.consecutiveFailures - downAfter + 1, 20);
      const backoff = Math.min(maxBackoff, interval * 2 ** k);
      return Math.max(interval, backoff * (0.8 + 0.4 * Math.random()));
    }
    // Fixed rate: the next poll starts one interval after this one started; an overrun skips to the next slot.
    const elapsed = Date.now() - started;
    return elapsed < interval ? interval - elapsed : interval - (elapsed % interval);
  }

  private async poll(dev: DeviceRun): Promise<void> {
    const bus = this.bus;
    if (!bus) return;
    const { cfg, tracker } = dev;
    const events: EventInput[] = [];
    let answered = 0;
    let refused = 0;
    let failure: ModbusFailure | undefined;
    for (const req of dev.requests) {
      if (this.stopping) return;
      let data: number[] | boolean[] | undefined;
      let lastError: ModbusFailure | undefined;
      for (let attempt = 0; attempt <= cfg.retries && !this.stopping; attempt++) {
        try {
          data = await bus.read(req.table, cfg.unitId, req.address, req.count, cfg.timeout);
          break;
        } catch (err) {
          lastError = err as ModbusFailure;
          // Every failed attempt is counted by its reason (a CRC error that a retry then turns
          // into a timeout is still a CRC error on the line).
          if (lastError.reason !== 'stopped' && lastError.reason !== 'exception')
            tracker.count(lastError.reason, lastError.message);
          // An exception is the device's deliberate answer; a port that does not open will not open
          // a millisecond later: neither is worth a retry now.
          if (['exception', 'stopped', 'open', 'connect'].includes(lastError.reason)) break;
        }
      }
      if (this.stopping) return;
      const now = Date.now();
      if (data) {
        answered++;
        this.readings(dev, req, data, now, events);
      } else if (lastError?.reason === 'exception') {
        refused++;
        tracker.count('exception', `${req.table} ${req.address}..${req.address + req.count - 1}: ${lastError.message}`);
      } else {
        failure = lastError;
        // The device does not answer: the rest of this poll would only wait out more timeouts.
        break;
      }
    }
    const now = Date.now();
    let previous: ReturnType<DeviceTracker['success']>;
    if (failure && answered === 0 && refused === 0) {
      previous = tracker.failure(failure.reason, failure.message, true);
      if (tracker.state === 'down' && previous !== undefined) this.staleReadings(dev, now, events);
    } else {
      previous = tracker.success(now, refused > 0 || failure !== undefined);
    }
    if (previous !== undefined) {
      events.push(statusEvent(this, tracker, previous, now));
      const log = this.ctx?.logger;
      const msg = `modbus device ${tracker.device} of ${this.name} is ${tracker.state}`;
      if (tracker.state === 'up') log?.info({ driver: this.name, device: tracker.device }, msg);
      else log?.warn({ driver: this.name, device: tracker.device, error: tracker.lastError }, msg);
    }
    if (events.length === 0 || !this.ctx) return;
    try {
      await this.ctx.emit(events);
    } catch (err) {
      tracker.count('emit', `readings not stored: ${(err as Error).message}`);
    }
  }

  private readings(dev: DeviceRun, req: ReadRequest, data: number[] | boolean[], now: number, out: EventInput[]): void {
    const bits = req.table === 'coil' || req.table === 'discrete';
    for (const p of req.points) {
      const raw = bits
        ? (data as boolean[])[p.config.address - req.address] === true
        : decodeRegisters(p, data as number[], req.address);
      let value: number | boolean | null = scaleValue(p, raw);
      const bad = typeof value === 'number' && !Number.isFinite(value);
      if (bad) value = null;
      const last = dev.reported.get(p);
      if (dev.cfg.reportOnChange && last && !last.stale && !bad && !changed(last.value, value, p.deadband)) {
        if (dev.cfg.heartbeat === 0 || now - last.ts < dev.cfg.heartbeat) continue;
      }
      dev.reported.set(p, { value, ts: now, stale: false });
      const payload: Record<string, unknown> = { value };
      if (p.config.unit !== undefined) payload.unit = p.config.unit;
      if (bad) payload.quality = 'bad';
      out.push({ source: this.source, topic: p.topic, kind: 'reading', ts: now, payload });
      dev.tracker.lastReading = { topic: p.topic, value, ts: now };
    }
  }

  private staleReadings(dev: DeviceRun, now: number, out: EventInput[]): void {
    for (const [p, last] of dev.reported) {
      if (last.stale) continue;
      last.stale = true;
      const payload: Record<string, unknown> = { value: last.value };
      if (p.config.unit !== undefined) payload.unit = p.config.unit;
      payload.quality = 'stale';
      out.push({ source: this.source, topic: p.topic, kind: 'reading', ts: now, payload });
    }
  }
}

function changed(prev: number | boolean | null, next: number | boolean | null, deadband: number): boolean {
  if (typeof prev === 'number' && typeof next === 'number')
    return Math.abs(next - prev) > deadband || (deadband === 0 && next !== prev);
  return prev !== next;
}
