/**
 * An UplinkRunner over a MemoryLog, as the sink tests drive one: the reader is named after the
 * uplink, the logger is silent unless given, the metrics registry is its own, and a temp data
 * directory takes the dead letters (and a sink's local state). Not started: the test appends and
 * starts in the order it needs.
 */
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { silentLogger } from '../../../src/core/log.js';
import type { CommonUplinkConfig } from '../../../uplink/common-schema.js';
import { UplinkRunner } from '../../../uplink/runner.js';
import type { Sink, SinkContext } from '../../../uplink/sink.js';
import { tempDir } from '../peers.js';
import { MemoryLog, type MemoryReader } from './memory-log.js';

export interface MemoryRun<S extends Sink> {
  log: MemoryLog;
  reader: MemoryReader;
  sink: S;
  runner: UplinkRunner;
  registry: Registry;
  dataDir: string;
  /** Stops the runner (waiting up to `stopMs` for the batch in flight), then removes a data directory it made. */
  stop(): Promise<void>;
}

export function memoryRunner<S extends Sink>(
  config: CommonUplinkConfig,
  makeSink: (ctx: SinkContext & { dataDir: string }) => S,
  /** `dataDir`: one the caller owns (kept at stop; a restart test hands the next runner the same one). */
  opts: { gatewayId?: string; logger?: Logger; stopMs?: number; dataDir?: string } = {},
): MemoryRun<S> {
  const { gatewayId = 'gw-01', logger = silentLogger, stopMs = 2000 } = opts;
  const dir = opts.dataDir ? { path: opts.dataDir, cleanup() {} } : tempDir();
  const log = new MemoryLog(gatewayId);
  const reader = log.reader(config.name);
  const registry = new Registry();
  const sink = makeSink({ gatewayId, logger, dataDir: dir.path });
  const runner = new UplinkRunner({ config, sink, reader, gatewayId, logger, registry, dataDir: dir.path });
  const stop = async () => {
    await runner.stop(stopMs);
    dir.cleanup();
  };
  return { log, reader, sink, runner, registry, dataDir: dir.path, stop };
}
