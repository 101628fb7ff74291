/**
 * What the fleet component needs from the gateway (src/gateway.ts `Gateway` satisfies it). Kept as
 * a narrow interface so the fleet code states exactly what it touches.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';

export interface FleetUplinkStatus {
  name: string;
  type: string;
  connected: boolean;
  pendingEvents: number;
  deliveredEvents: number;
  lastError: string | null;
  lastDeliveryAt?: number | null;
  /** False while a transmit window keeps the uplink closed; null/undefined without windows. */
  windowOpen?: boolean | null;
}

export interface FleetGateway {
  readonly id: string;
  /** The running config. */
  readonly config: Config;
  readonly logger: Logger;
  readonly registry: Registry;
  /** Applies a new config without a restart, touching only what changed; throws when a part failed. */
  reconfigure(next: Config): Promise<void>;
  restartDriver(name: string): Promise<void>;
  /** Writes a device point through the gateway's write path (`device.write`). */
  writePoint?(req: {
    driver: string;
    point: string;
    value: unknown;
    reason?: string;
    requester: string;
  }): Promise<{ ok: boolean; outcome: string; error?: string; readBack?: unknown }>;
  flushUplinks(name?: string): void;
  status(): {
    uplinks: FleetUplinkStatus[];
    drivers?: { name: string; devices: { state: string }[] }[];
    ingest?: { received: number };
    [key: string]: unknown;
  };
}
