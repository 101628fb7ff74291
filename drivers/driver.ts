/**
 * The Driver contract. A driver turns a field device (a Modbus slave, a serial line, the board
 * itself) into events. It pushes them through `ctx.emit`, which resolves once the events are durable
 * in the ring log; a driver awaits it, so a slow disk slows polling instead of growing a queue
 * (back-pressure). A driver never throws out of its poll loop: device faults are counted per device
 * and reason, shown in `health()`, and retried with backoff until `stop`.
 */
import type { Logger } from 'pino';
import type { EventInput } from '../src/core/event.js';
import type { WritableSpec, WriteValue } from './write/schema.js';

export type DeviceState = 'starting' | 'up' | 'degraded' | 'down' | 'stopped';

export interface DeviceHealth {
  /** Device id within the driver (e.g. `unit-1`, the port path). */
  device: string;
  state: DeviceState;
  lastSuccessTs: number | null;
  consecutiveFailures: number;
  /** Failures counted by reason (`timeout`, `exception`, `crc`, `checksum`, ...). */
  failures: Record<string, number>;
  lastError?: string;
  lastReading?: { topic: string; value: unknown; ts: number };
}

export interface DriverHealth {
  name: string;
  type: string;
  devices: DeviceHealth[];
}

export interface DriverContext {
  gatewayId: string;
  logger: Logger;
  /** The gateway's data directory (the system driver reports its free space). */
  dataDir?: string;
  /** Appends events to the ring log; resolves when they are durable. */
  emit(events: EventInput[]): Promise<void>;
}

/** A point the config declares `writable`, and the device it is on. */
export interface WritablePoint {
  point: string;
  device: string;
  writable: WritableSpec;
}

export interface WriteOutcome {
  /** With `verify`: the value read back from the device after the write. */
  readBack?: unknown;
}

export interface Driver {
  readonly name: string;
  readonly type: string;
  start(ctx: DriverContext): Promise<void>;
  /** Stops polling and closes ports; resolves by `deadline` (epoch ms) at the latest. */
  stop(deadline: number): Promise<void>;
  health(): DriverHealth;
  /** Drivers that can write: the points the config declares writable. */
  writablePoints?(): WritablePoint[];
  /**
   * Writes one writable point now (never queued) and resolves once the device acknowledged it;
   * with `verify`, reads it back. Throws one sentence when the device refused or did not answer.
   * Safety checks (limits, rate) are the write path's (drivers/write/), not the driver's.
   */
  write?(point: string, value: WriteValue, verify: boolean): Promise<WriteOutcome>;
}
