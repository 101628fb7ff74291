/**
 * The ring log (buffer/SPEC.md): the gateway's one durable point. `openRingLog` opens (or creates)
 * the log under `<dir>/ringlog`, recovering from the last commit without scanning events; a
 * database that will not open is repaired or quarantined, never a reason not to start.
 */
import type { Logger } from 'pino';
import { LevelRingLog } from './ring-log.js';
import type { RingLogConfig } from './schema.js';
import type { RingLog } from './types.js';

export type { AppendResult, BufferStats, LogReader, ReaderOptions, ReaderStats, RingLog } from './types.js';
export { BufferFullError } from './types.js';

export async function openRingLog(opts: {
  dir: string;
  gatewayId: string;
  config: RingLogConfig;
  logger?: Logger;
}): Promise<RingLog> {
  const log = new LevelRingLog(opts);
  await log.open();
  return log;
}
