/** What `GET /api/status` shows of each configured uplink (uplink/runner.ts fills it). */
export type UplinkState = 'starting' | 'idle' | 'sending' | 'backoff' | 'window-closed' | 'disabled' | 'stopped';

export interface UplinkStatus {
  name: string;
  type: string;
  state: UplinkState;
  connected: boolean;
  pendingEvents: number;
  deliveredEvents: number;
  deliveredBatches: number;
  /** Send attempts that failed and were retried. */
  retried: number;
  deadLettered: number;
  lastError: string | null;
  lastErrorAt: number | null;
  /** Age of the oldest event the uplink is trying to deliver; 0 when it is caught up. */
  lagSeconds: number;
  lastDeliveryAt: number | null;
  /** Null when no transmit windows are configured. */
  windowOpen: boolean | null;
  /** Events the log evicted before this uplink delivered them. */
  skipped: number;
  /** The dead-letter store: entries held, bytes, entries dropped by its bound, file. */
  deadLetterStore: { held: number; bytes: number; discarded: number; path: string } | null;
}
