/**
 * The serial line driver: reads records from a serial port (framed by a delimiter) and turns them
 * into readings in one of three formats (lines, json-lines, nmea).
 *
 * Guarantees: bad input never stops the driver: binary garbage, lines that do not parse, bad NMEA
 * checksums and over-long records are dropped and counted per reason. A port that is missing or
 * goes away (a USB adapter unplugged) makes the device `down` and is reopened with exponential
 * backoff, up to `maxBackoff`, until it is back; a partial record from before the loss is discarded.
 * Readings are handed to `emit` in order; while an emit is pending, further records queue up to a
 * bound, beyond which the port is paused (the device's own buffer, then the kernel's, absorb it).
 * When the device goes `down` (port lost) or `degraded` (nothing valid for `staleAfter`), the last
 * reading of each topic is emitted once more with `quality: "stale"`. `stop` closes the port by its
 * deadline.
 */
import { SerialPort } from 'serialport';
import type { EventInput } from '../../src/core/event.js';
import { DeviceTracker, Sleeper, statusEvent, untilDeadline } from '../device-health.js';
import type { Driver, DriverContext, DriverHealth } from '../driver.js';
import {
  jsonLineParser,
  keyValueParser,
  LineFramer,
  NmeaParser,
  type ParseResult,
  recordText,
  regexParser,
} from './parse.js';
import type { SerialConfig } from './schema.js';

/** Events waiting for the ring log before the port is paused. */
const MAX_PENDING = 1000;
const MIN_BACKOFF_MS = 250;
const MAX_REMEMBERED_TOPICS = 256;

export class SerialDriver implements Driver {
  readonly name: string;
  readonly type = 'serial';
  private readonly source: string;
  private readonly tracker: DeviceTracker;
  private readonly framer: LineFramer;
  private readonly parse: (text: string) => ParseResult;
  private readonly sleeper = new Sleeper();
  private ctx?: DriverContext;
  private port?: SerialPort;
  private loop?: Promise<void>;
  private stopping = false;
  private pending: EventInput[] = [];
  private emitting?: Promise<void>;
  private lastRecordTs = 0;
  private staleTimer?: NodeJS.Timeout;
  /** The last object payload per topic, re-emitted as stale when the device goes away. */
  private readonly last = new Map<string, { payload: Record<string, unknown>; deviceTs?: number }>();
  /** Rejections logged so far per reason (the first of each is logged, then every 1000th). */
  private logged: Record<string, number> = {};

  constructor(private readonly config: SerialConfig) {
    this.name = config.name;
    this.source = `serial:${config.name}`;
    this.tracker = new DeviceTracker(config.path, 1);
    this.framer = new LineFramer(
      Buffer.from(config.delimiter === '\r\n' ? '\n' : config.delimiter),
      config.maxLineBytes,
    );
    if (config.format === 'nmea') {
      const nmea = new NmeaParser(config.topic);
      this.parse = (t) => nmea.parse(t);
    } else if (config.format === 'json-lines') this.parse = jsonLineParser(config.topic);
    else if (config.pattern !== undefined) this.parse = regexParser(config.pattern, config.topic, config.units);
    else this.parse = keyValueParser(config.topic, config.units);
  }

  async start(ctx: DriverContext): Promise<void> {
    this.ctx = ctx;
    this.loop = this.run();
    if (this.config.staleAfter > 0) {
      this.staleTimer = setInterval(() => this.checkStale(), Math.min(1000, Math.max(50, this.config.staleAfter / 2)));
    }
  }

  async stop(deadline: number): Promise<void> {
    this.stopping = true;
    clearInterval(this.staleTimer);
    this.sleeper.abort();
    const port = this.port;
    if (port?.isOpen) await untilDeadline(new Promise<void>((r) => port.close(() => r())), deadline);
    await untilDeadline(Promise.all([this.loop, this.emitting]), deadline);
    this.tracker.set('stopped');
  }

  health(): DriverHealth {
    const device = this.tracker.snapshot();
    if (this.framer.tooLong) device.failures['too-long'] = this.framer.tooLong;
    return { name: this.name, type: this.type, devices: [device] };
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.stopping) {
      let reason = 'open';
      let message: string;
      try {
        const { closed } = await this.open();
        attempt = 0;
        const err = await closed;
        if (this.stopping) break;
        reason = 'disconnected';
        message = `${this.config.path} closed${err ? `: ${err.message}` : ''}`;
      } catch (err) {
        message = `cannot open ${this.config.path}: ${(err as Error).message}`;
      }
      this.framer.reset();
      this.changed(this.tracker.failure(reason, message));
      attempt++;
      const backoff = Math.min(this.config.maxBackoff, MIN_BACKOFF_MS * 2 ** Math.min(attempt - 1, 20));
      await this.sleeper.sleep(backoff * (0.8 + 0.4 * Math.random()));
    }
  }

  /** Opens the port; resolves with a promise of its closing (with the error that closed it, if any). */
  private open(): Promise<{ closed: Promise<Error | undefined> }> {
    const c = this.config;
    return new Promise((resolve, reject) => {
      const port = new SerialPort({
        path: c.path,
        baudRate: c.baudRate,
        dataBits: c.dataBits,
        parity: c.parity,
        stopBits: c.stopBits,
        autoOpen: false,
      });
      port.open((err) => {
        if (err) return reject(err);
        if (this.stopping) {
          port.close();
          return reject(new Error('stopping'));
        }
        this.port = port;
        this.ctx?.logger.info({ driver: this.name, path: c.path }, `serial port ${c.path} open`);
        // Wrapped in an object: resolving with a promise would wait for that promise instead.
        resolve({
          closed: new Promise((closed) => {
            let lastError: Error | undefined;
            port.on('error', (e: Error) => {
              lastError = e;
              // A read error on an unplugged adapter does not always close the port by itself.
              if (port.isOpen) port.close();
            });
            port.on('close', (e?: Error) => {
              if (this.port === port) this.port = undefined;
              closed(e ?? lastError);
            });
          }),
        });
        port.on('data', (chunk: Buffer) => this.onData(chunk));
      });
    });
  }

  private onData(chunk: Buffer): void {
    const now = Date.now();
    for (const record of this.framer.push(chunk)) {
      const text = recordText(record);
      if ('reason' in text) {
        this.reject(text.reason, text.message);
        continue;
      }
      const result = this.parse(text.text);
      if (result.ok === 'ignored') continue;
      if (result.ok === false) {
        this.reject(result.reason, result.message);
        continue;
      }
      this.lastRecordTs = now;
      for (const r of result.readings) {
        this.pending.push({
          source: this.source,
          topic: r.topic,
          kind: 'reading',
          ts: now,
          payload: r.payload,
          ...(r.deviceTs !== undefined ? { deviceTs: r.deviceTs } : {}),
        });
        this.tracker.lastReading = { topic: r.topic, value: r.payload, ts: now };
        this.remember(r.topic, r.payload, r.deviceTs);
      }
      this.changed(this.tracker.success(now));
    }
    this.pump();
  }

  private reject(reason: string, message: string): void {
    this.tracker.count(reason, message);
    const n = (this.logged[reason] ?? 0) + 1;
    this.logged[reason] = n;
    if (n === 1 || n % 1000 === 0) this.ctx?.logger.warn({ driver: this.name, reason, count: n }, message);
  }

  private checkStale(): void {
    if (this.tracker.state !== 'up' || Date.now() - this.lastRecordTs <= this.config.staleAfter) return;
    this.tracker.lastError = `no valid record for ${Math.round((Date.now() - this.lastRecordTs) / 1000)} s`;
    this.changed(this.tracker.set('degraded'));
  }

  /** Keeps the last object payload per topic (bounded: keys of a key=value line come from the device). */
  private remember(topic: string, payload: unknown, deviceTs: number | undefined): void {
    if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) return;
    if (!this.last.has(topic) && this.last.size >= MAX_REMEMBERED_TOPICS) return;
    this.last.set(topic, { payload: payload as Record<string, unknown>, deviceTs });
  }

  private changed(previous: ReturnType<DeviceTracker['set']>): void {
    if (previous === undefined) return;
    if (previous === 'up' && (this.tracker.state === 'down' || this.tracker.state === 'degraded')) {
      // The last values are no longer current: say so once, as readings with quality "stale".
      const now = Date.now();
      for (const [topic, { payload, deviceTs }] of this.last) {
        this.pending.push({
          source: this.source,
          topic,
          kind: 'reading',
          ts: now,
          payload: { ...payload, quality: 'stale' },
          ...(deviceTs !== undefined ? { deviceTs } : {}),
        });
      }
      this.last.clear();
    }
    this.pending.push(statusEvent(this, this.tracker, previous));
    const msg = `serial device ${this.config.path} of ${this.name} is ${this.tracker.state}`;
    if (this.tracker.state === 'up') this.ctx?.logger.info({ driver: this.name }, msg);
    else this.ctx?.logger.warn({ driver: this.name, error: this.tracker.lastError }, msg);
    this.pump();
  }

  /** Hands pending events to the ring log one batch at a time, in order; pauses the port while too many wait. */
  private pump(): void {
    if (this.pending.length > MAX_PENDING && this.port?.isOpen && !this.port.isPaused()) this.port.pause();
    if (this.emitting || this.pending.length === 0 || !this.ctx) return;
    const batch = this.pending;
    this.pending = [];
    const ctx = this.ctx;
    this.emitting = ctx
      .emit(batch)
      .catch((err: Error) => this.tracker.count('emit', `readings not stored: ${err.message}`))
      .finally(() => {
        this.emitting = undefined;
        if (this.pending.length <= MAX_PENDING && this.port?.isPaused()) this.port.resume();
        this.pump();
      });
  }
}
