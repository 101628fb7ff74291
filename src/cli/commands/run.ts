/**
 * `sluice run [-c FILE]`: runs the gateway until SIGTERM/SIGINT, then stops intake, commits, closes
 * the log and exits 0 within 5 s. SIGHUP reloads the config file (src/ops/reload.ts). A config or
 * start-up problem is one sentence and exit 1.
 */
import { ConfigError, resolveConfig } from '../../config/load.js';
import { loadEffectiveConfig } from '../../fleet/index.js';
import { Gateway } from '../../gateway.js';
import { createLogger } from '../../core/log.js';
import { reloadConfig } from '../../ops/reload.js';
import { startWatchdog } from '../../ops/watchdog.js';
import { parseFlags } from '../args.js';

export default async function run(args: string[]): Promise<number> {
  const { values } = parseFlags(args, { config: { type: 'string', short: 'c' } });
  let resolved: Awaited<ReturnType<typeof resolveConfig>>;
  try {
    resolved = await resolveConfig(values.config);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    throw err;
  }
  const logger = createLogger(process.env.SLUICE_LOG_LEVEL ?? resolved.config.gateway.logLevel);
  // A fleet-applied config that proved healthy (last-known-good) wins over an older file.
  const { config } = await loadEffectiveConfig(resolved.config, undefined, logger);
  const gateway = new Gateway(config, { logger, configFile: resolved.file });
  // Installed at once: Node's default for SIGHUP ends the process, and a reload may come during start-up.
  let onHup = () => logger.warn('SIGHUP during start-up ignored: reload once the gateway runs');
  process.on('SIGHUP', () => onHup());
  const watchdog = startWatchdog({
    logger,
    healthy: () => gateway.health().ok,
    statusText: () => `${gateway.status().ingest.received} events received`,
  });
  try {
    await gateway.start();
    watchdog.ready();
  } catch (err) {
    watchdog.stop();
    logger.flush?.();
    process.stderr.write(`sluice: cannot start: ${(err as Error).message}\n`);
    return 1;
  }
  const status = gateway.status();
  const broker = status.broker.listeners.map((l) => `mqtt://${l.host}:${l.port}`).join(', ');
  const http = gateway.http?.address;
  logger.info(
    `gateway ${config.gateway.id} running: broker ${broker || 'off'}, http ${http ? `http://${http.host}:${http.port}` : 'off'}, data ${config.gateway.dataDir}`,
  );

  return new Promise<number>((resolve) => {
    let stopping = false;
    const shutdown = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'stopping');
      watchdog.stopping();
      watchdog.stop();
      const hardStop = setTimeout(() => {
        logger.error('shutdown took longer than 5 s; exiting');
        resolve(1);
      }, 5000);
      hardStop.unref();
      gateway.stop(4500).then(
        () => {
          clearTimeout(hardStop);
          // Exit even if a library left a handle open; unref'd, so a clean loop exits sooner.
          setTimeout(() => process.exit(0), 1000).unref();
          resolve(0);
        },
        (err) => {
          logger.error({ err: (err as Error).message }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    // Reload (systemctl reload): the file again, through the fleet's apply/health/rollback path.
    onHup = () => {
      if (stopping) return;
      logger.info({ file: resolved.file }, 'SIGHUP: reloading the config');
      reloadConfig(gateway, resolved.file, logger).catch((err) => logger.error({ err: (err as Error).message }, 'config reload failed'));
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
  });
}
