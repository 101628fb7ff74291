/**
 * A driver or an uplink as the gateway runs it: built from its config entry, started and stopped
 * by a ComponentSet (src/component-set.ts). Part of the composition root.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { RingLog } from '../../buffer/types.js';
import type { Driver } from '../../drivers/driver.js';
import { createDriver } from '../../drivers/index.js';
import type { DriverConfig } from '../../drivers/schema.js';
import { createSink } from '../../uplink/index.js';
import { readerOptions, UplinkRunner } from '../../uplink/runner.js';
import type { UplinkConfig } from '../../uplink/schema.js';
import { placeCursor } from '../../uplink/start-position.js';
import { disabledSink } from '../../uplink/sink.js';
import type { EventInput } from '../core/event.js';
import { wherePredicate } from '../rules/route.js';

/** How long a driver or uplink gets to stop. */
const COMPONENT_STOP_MS = 3000;

export interface ComponentDeps {
  gatewayId: string;
  logger: Logger;
  dataDir: string;
  registry: Registry;
}

export interface DriverHandle {
  driver: Driver;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface UplinkHandle {
  runner: UplinkRunner;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export async function buildDriver(
  config: DriverConfig,
  deps: ComponentDeps & {
    ingest(events: EventInput[]): Promise<unknown>;
    /** `republish:` of the driver's readings on the local broker, once they are stored. */
    republish(driver: string, events: EventInput[]): void;
  },
): Promise<DriverHandle> {
  const driver = await createDriver(config);
  const logger = deps.logger.child({ component: 'driver', driver: config.name });
  return {
    driver,
    start: () =>
      driver.start({
        gatewayId: deps.gatewayId,
        logger,
        dataDir: deps.dataDir,
        emit: async (events) => {
          await deps.ingest(events);
          deps.republish(config.name, events);
        },
      }),
    stop: () => driver.stop(Date.now() + COMPONENT_STOP_MS),
  };
}

export async function buildUplink(config: UplinkConfig, deps: ComponentDeps & { log: RingLog }): Promise<UplinkHandle> {
  const logger = deps.logger.child({ component: 'uplink', uplink: config.name });
  // A disabled uplink runs without its protocol: it keeps its cursor and shows its backlog in status.
  const sink = config.enabled === false ? disabledSink : await createSink(config, { gatewayId: deps.gatewayId, logger, dataDir: deps.dataDir });
  // No stored cursor: a new uplink, which starts where its `start:` says. The cursor is placed and
  // persisted before the runner exists, so nothing is sent before it (uplink/start-position.ts).
  const isNew = !deps.log.readerStats().some((r) => r.name === config.name);
  const reader = deps.log.reader(config.name, readerOptions(config));
  if (isNew && config.start !== 'oldest') {
    const skipped = await placeCursor(reader, config.start, deps.log.stats().lastSeq);
    logger.info({ start: config.start, skipped }, 'new uplink: starting cursor placed');
  }
  const runner = new UplinkRunner({
    config,
    sink,
    reader,
    gatewayId: deps.gatewayId,
    logger,
    registry: deps.registry,
    dataDir: deps.dataDir,
    where: config.where ? wherePredicate(config.where, config.name, deps.registry) : undefined,
  });
  return {
    runner,
    start: async () => runner.start(),
    stop: () => runner.stop(Date.now() + COMPONENT_STOP_MS),
  };
}
