/** What the fleet agent reports in `GET /api/status` and its retained state. */
import type { ApplyReport } from './apply.js';
import type { Scheduler } from './schedules.js';

export interface LastApply {
  commandId: string;
  version: number;
  outcome: ApplyReport['outcome'];
  error?: string;
  /** For a rolled-back config: `ok`, or what went wrong putting the previous one back. */
  rollback?: string;
  at: number;
}

export interface FleetStatus {
  enabled: boolean;
  connected: boolean;
  configVersion: number;
  configHash: string;
  lastApply: LastApply | null;
  queued: number;
  commands: { ok: number; refused: number; failed: number };
  schedules: ReturnType<Scheduler['status']>;
}
