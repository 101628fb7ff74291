/** Builds the driver of a config entry through the registry (drivers/registry.ts), which imports each type's code on first use. */
import type { Driver } from './driver.js';
import { drivers } from './registry.js';
import type { DriverConfig } from './schema.js';

export async function createDriver(config: DriverConfig): Promise<Driver> {
  const plugin = Object.hasOwn(drivers, config.type) ? drivers[config.type] : undefined;
  if (!plugin) throw new Error(`unknown driver type "${(config as { type: string }).type}"`);
  const create = (await plugin.load()) as (config: DriverConfig) => Driver;
  return create(config);
}
