/**
 * The Driver contract. A driver turns a field device (a Modbus slave, a serial line, the board
 * itself) into events. It pushes them through `ctx.emit`, which resolves once the events are durable
 * in the ring log; a driver awaits it, so a slow disk slows polling instead of growing a queue
 * (back-pressure). A driver never throws out of its poll loop: device faults are counted per device
 * and reason, shown in `health()`, and retried with backoff until `stop`.
 */
import type { Logger } from 'pino';
import type { EventInput } from '../src/event.js';

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

export interface Driver {
  readonly name: string;
  readonly type: string;
  start(ctx: DriverContext): Promise<void>;
  /** Stops polling and closes ports; resolves by `deadline` (epoch ms) at the latest. */
  stop(deadline: number): Promise<void>;
  health(): DriverHealth;
}
