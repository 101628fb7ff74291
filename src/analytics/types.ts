/** The analytics engine's inputs, context and status (engine.ts). */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { EventInput, EventKind } from '../core/event.js';

export interface ObservedEvent {
  seq: number;
  ts: number;
  topic: string;
  payload: unknown;
  kind: EventKind | string;
  deviceTs?: number;
  source?: string;
}

export interface AnalyticsContext {
  logger: Logger;
  registry: Registry;
  /** Publishes a message on the local broker (local actions). */
  publishLocal(topic: string, payload: string): void;
  /** Asks for a write to a device point (write actions); the write path checks and audits it. */
  write?(req: { driver: string; point: string; value: unknown; reason: string; requester: string }): void;
  /** Appends events found off the intake path (timer ticks); without it they wait for the next observe(). */
  emit?(events: EventInput[]): void;
  /** Clock tick for gap detection and idle window closing, ms (default 1000; 0 disables the timer). */
  tickMs?: number;
  /** Wall clock (tests). */
  now?: () => number;
  /**
   * Where detector state is kept across restarts (e.g. `<dataDir>/analytics-state.json`): loaded at
   * construction, written by close(). Window contents are not kept (a window open at a stop is lost).
   */
  stateFile?: string;
}

export interface AnalyticsStatus {
  total: number;
  byDetector: Record<string, number>;
  recent: object[];
  /** Clock-found events dropped because no emit() was wired and nobody called observe() for long. */
  droppedPending: number;
  rules: {
    name: string;
    keys: number;
    anomalies: number;
    aggregates: number;
    notNumeric: number;
    late: number;
    errors: number;
    evictedKeys: number;
    actionsPublished: number;
    actionsSuppressed: number;
  }[];
}
