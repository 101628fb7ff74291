/**
 * Builds the sink of an uplink config entry through the registry (uplink/registry.ts), which
 * imports each type's code on first use.
 */
import { sinks } from './registry.js';
import type { UplinkConfig } from './schema.js';
import type { Sink, SinkContext } from './sink.js';

export type { SinkContext } from './sink.js';

export async function createSink(config: UplinkConfig, ctx: Required<SinkContext>): Promise<Sink> {
  const plugin = Object.hasOwn(sinks, config.type) ? sinks[config.type] : undefined;
  if (!plugin) {
    throw new Error(`uplinks.${(config as { name: string }).name}.type: unknown uplink type "${(config as { type: string }).type}"`);
  }
  const create = (await plugin.load()) as (config: UplinkConfig, ctx: Required<SinkContext>) => Sink;
  return create(config, ctx);
}

export { readerOptions, UplinkRunner, type UplinkStatus } from './runner.js';
