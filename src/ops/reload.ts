/**
 * Config reload (SIGHUP, `systemctl reload sluice`): the config file is read again and applied
 * through the same hot-apply path as a fleet `config.set` (src/fleet/apply.ts): validated, dry-run
 * (ports free, serial paths present), applied touching only what changed, health-checked, and rolled
 * back to the running config if it is not healthy in time. An invalid file is one log line (its
 * first problems), is counted, and changes nothing. The file is the source of truth for a reload:
 * nothing is written; a fleet last-known-good config newer than the file still wins, as at boot.
 */
import type { Logger } from 'pino';
import { ConfigError, loadConfigFile } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { configHash } from '../fleet/lkg.js';
import { dryRun } from '../fleet/dry-run.js';
import { hotApply } from '../fleet/apply.js';
import { loadEffectiveConfig } from '../fleet/index.js';
import type { FleetGateway } from '../fleet/gateway-port.js';
import { registeredCounter } from './metrics.js';

/** What a reload needs of the gateway (src/gateway.ts `Gateway` satisfies it). */
export interface ReloadGateway extends FleetGateway {
  readonly fleet?: { reconfigured(): Promise<void>; status(): { connected: boolean } };
}

export type ReloadOutcome = 'applied' | 'unchanged' | 'invalid' | 'refused' | 'rolled-back' | 'interrupted';

export interface ReloadReport {
  outcome: ReloadOutcome;
  /** One sentence when nothing (or not everything) changed. */
  error?: string;
}

export async function reloadConfig(gateway: ReloadGateway, file: string | undefined, logger: Logger): Promise<ReloadReport> {
  const counter = registeredCounter(gateway.registry, 'sluice_config_reloads_total', 'Config reloads (SIGHUP), by outcome.', ['outcome']);
  const report = await reload(gateway, file, logger);
  counter.inc({ outcome: report.outcome });
  if (report.outcome === 'applied') logger.info({ file }, 'config reloaded and healthy');
  else if (report.outcome === 'unchanged') logger.info({ file }, 'config reload: the file is unchanged; nothing to do');
  else logger.error({ file, outcome: report.outcome }, `config reload ${report.outcome}: ${report.error}`);
  return report;
}

async function reload(gateway: ReloadGateway, file: string | undefined, logger: Logger): Promise<ReloadReport> {
  if (!file) return { outcome: 'refused', error: 'the gateway runs built-in defaults (no -c FILE or SLUICE_CONFIG), so there is no file to reload' };
  let fromFile: Config;
  try {
    fromFile = await loadConfigFile(file);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const shown = err.problems.slice(0, 3).join('; ') + (err.problems.length > 3 ? `; and ${err.problems.length - 3} more` : '');
    return { outcome: 'invalid', error: `${file} is invalid, the running config stays: ${shown} (sluice validate -c ${file} lists every problem)` };
  }
  const prev = gateway.config;
  if (fromFile.gateway.id !== prev.gateway.id || fromFile.gateway.dataDir !== prev.gateway.dataDir) {
    return { outcome: 'refused', error: 'gateway.id and gateway.dataDir cannot change at run time; restart the gateway to change them' };
  }
  const effective = await loadEffectiveConfig(fromFile, undefined, logger);
  const next = effective.config;
  if (configHash(next) === configHash(prev)) return { outcome: 'unchanged' };
  const problems = await dryRun(next, prev);
  if (problems.length) return { outcome: 'refused', error: `its dry run failed, the running config stays: ${problems.join('; ')}` };
  const fleet = gateway.fleet;
  const r = await hotApply(
    {
      gateway,
      logger,
      adopt: async () => fleet?.reconfigured(),
      fleetConnected: next.fleet ? () => fleet?.status().connected ?? false : () => true,
    },
    prev,
    next,
    { checkHealth: true, keep: async () => {} },
  );
  if (r.outcome === 'applied') return { outcome: 'applied' };
  if (r.outcome === 'interrupted') return { outcome: 'interrupted', error: 'the gateway stopped before the new config proved healthy' };
  return {
    outcome: 'rolled-back',
    error: `rolled back to the running config: ${r.why}${r.rollbackError ? `; the rollback met errors (${r.rollbackError})` : ''}`,
  };
}
