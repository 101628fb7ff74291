/**
 * Health of one field device as every driver tracks it: last success, consecutive failures, the
 * state (`starting` → `up`, `degraded` after a failure, `down` after `downAfter` failures in a row,
 * `stopped`), and failures counted per reason. Reasons are a small fixed vocabulary chosen by the
 * drivers (`timeout`, `exception`, `crc`, `checksum`, ...), so the counters stay bounded. A state
 * change yields one `status` event (kind "status") for the ring log.
 */
import type { EventInput } from '../src/core/event.js';
import type { DeviceHealth, DeviceState } from './driver.js';

export class DeviceTracker {
  state: DeviceState = 'starting';
  lastSuccessTs: number | null = null;
  consecutiveFailures = 0;
  readonly failures: Record<string, number> = {};
  lastError?: string;
  lastReading?: { topic: string; value: unknown; ts: number };

  constructor(
    readonly device: string,
    private readonly downAfter = 3,
  ) {}

  /** A successful exchange; returns the previous state when the state changed. */
  success(now = Date.now(), degraded = false): DeviceState | undefined {
    this.lastSuccessTs = now;
    this.consecutiveFailures = 0;
    return this.set(degraded ? 'degraded' : 'up');
  }

  /** Counts a failure that does not by itself mean the device is unreachable (a bad line, one exception). */
  count(reason: string, message?: string): void {
    this.failures[reason] = (this.failures[reason] ?? 0) + 1;
    if (message) this.lastError = message;
  }

  /** A failed exchange: counted, and the device is `degraded`, then `down`. Returns the previous state on a change. */
  failure(reason: string, message: string, alreadyCounted = false): DeviceState | undefined {
    if (alreadyCounted) this.lastError = message;
    else this.count(reason, message);
    this.consecutiveFailures++;
    return this.set(this.consecutiveFailures >= this.downAfter ? 'down' : 'degraded');
  }

  set(state: DeviceState): DeviceState | undefined {
    if (state === this.state) return undefined;
    const previous = this.state;
    this.state = state;
    return previous;
  }

  snapshot(): DeviceHealth {
    return {
      device: this.device,
      state: this.state,
      lastSuccessTs: this.lastSuccessTs,
      consecutiveFailures: this.consecutiveFailures,
      failures: { ...this.failures },
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
      ...(this.lastReading ? { lastReading: { ...this.lastReading } } : {}),
    };
  }
}

/** Topic of a driver's status events; the device is in the payload (a serial path has slashes). */
export function statusTopic(driverName: string): string {
  return `sluice/drivers/${driverName}/status`;
}

export function statusEvent(
  driver: { name: string; type: string },
  t: DeviceTracker,
  previous: DeviceState | undefined,
  ts = Date.now(),
): EventInput {
  return {
    source: `${driver.type}:${driver.name}`,
    topic: statusTopic(driver.name),
    kind: 'status',
    ts,
    payload: {
      driver: driver.name,
      type: driver.type,
      device: t.device,
      state: t.state,
      previous: previous ?? null,
      consecutiveFailures: t.consecutiveFailures,
      lastSuccessTs: t.lastSuccessTs,
      ...(t.state !== 'up' && t.lastError ? { lastError: t.lastError } : {}),
    },
  };
}

/** A sleep that `abort()` ends early (stop must not wait out a poll interval or a backoff). */
export class Sleeper {
  private timers = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();
  private aborted = false;

  sleep(ms: number): Promise<void> {
    if (this.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const entry = {
        timer: setTimeout(() => {
          this.timers.delete(entry);
          resolve();
        }, ms),
        resolve,
      };
      this.timers.add(entry);
    });
  }

  abort(): void {
    this.aborted = true;
    for (const e of this.timers) {
      clearTimeout(e.timer);
      e.resolve();
    }
    this.timers.clear();
  }
}

/** Resolves with `p`, or after `deadline` (epoch ms), whichever is first. */
export async function untilDeadline(p: Promise<unknown>, deadline: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    p.then(
      () => undefined,
      () => undefined,
    ),
    new Promise<void>((r) => {
      timer = setTimeout(r, Math.max(0, deadline - Date.now()));
    }),
  ]);
  clearTimeout(timer);
}
