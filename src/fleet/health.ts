/**
 * The health check after a config change: within `timeoutMs`, every enabled uplink of the new
 * config must be running and connected, and data must flow (nothing pending, or a delivery since
 * the change), and the fleet connection must be up (a config that cuts the gateway off from its
 * operators is the worst kind of bad). `fleet.healthCheck` can drop the uplink condition and add
 * two more: every enabled driver has a device up; events were ingested since the change.
 * An uplink held closed by a transmit window cannot be checked and passes. Healthy means two
 * consecutive polls agree, so a component that connects and drops at once does not pass.
 */
import type { Config } from '../config/schema.js';
import type { FleetGateway, FleetUplinkStatus } from './gateway-port.js';

export interface HealthReport {
  healthy: boolean;
  elapsedMs: number;
  /** Why it is not healthy (the last poll's reasons when it timed out). */
  reasons: string[];
}

export interface HealthOptions {
  timeoutMs: number;
  /** Epoch ms of the change: deliveries after it count as data flowing. */
  since: number;
  fleetConnected?: () => boolean;
  /** `ingest.received` before the change, for the ingest condition. */
  receivedBefore?: number;
  pollMs?: number;
  signal?: AbortSignal;
}

export function healthReasons(
  config: Config,
  status: ReturnType<FleetGateway['status']>,
  since: number,
  fleetConnected?: () => boolean,
  receivedBefore = 0,
): string[] {
  const reasons: string[] = [];
  const checks = config.fleet?.healthCheck ?? { uplinks: true, drivers: false, ingest: false };
  if (checks.uplinks) {
    for (const u of config.uplinks) {
      if (u.enabled === false) continue;
      const s: FleetUplinkStatus | undefined = status.uplinks.find((x) => x.name === u.name);
      if (!s) {
        reasons.push(`uplink "${u.name}" is not running`);
        continue;
      }
      if (s.windowOpen === false) continue;
      if (!s.connected) {
        reasons.push(`uplink "${u.name}" is not connected${s.lastError ? ` (${s.lastError})` : ''}`);
      } else if (s.pendingEvents > 0 && !((s.lastDeliveryAt ?? 0) >= since)) {
        reasons.push(`uplink "${u.name}" has ${s.pendingEvents} pending events and delivered none since the change`);
      }
    }
  }
  if (checks.drivers) {
    for (const d of config.drivers) {
      if (d.enabled === false) continue;
      const h = status.drivers?.find((x) => x.name === d.name);
      if (!h) reasons.push(`driver "${d.name}" is not running`);
      else if (!h.devices.some((dev) => dev.state === 'up')) reasons.push(`driver "${d.name}" has no device up`);
    }
  }
  if (checks.ingest && (status.ingest?.received ?? 0) <= receivedBefore) reasons.push('no event was ingested since the change');
  if (fleetConnected && !fleetConnected()) reasons.push('the fleet connection is down');
  return reasons;
}

export async function waitHealthy(gateway: FleetGateway, config: Config, opts: HealthOptions): Promise<HealthReport> {
  const start = Date.now();
  const poll = opts.pollMs ?? 200;
  let goodPolls = 0;
  let reasons: string[];
  for (;;) {
    reasons = healthReasons(config, gateway.status(), opts.since, opts.fleetConnected, opts.receivedBefore);
    goodPolls = reasons.length === 0 ? goodPolls + 1 : 0;
    if (goodPolls >= 2) return { healthy: true, elapsedMs: Date.now() - start, reasons: [] };
    if (Date.now() - start >= opts.timeoutMs || opts.signal?.aborted) {
      return { healthy: false, elapsedMs: Date.now() - start, reasons: reasons.length ? reasons : ['not healthy long enough'] };
    }
    await new Promise((r) => setTimeout(r, poll));
  }
}
