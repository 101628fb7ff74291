/** Logging: pino, JSON lines by default (for journald and log shippers), pretty in a terminal. */
import { type Logger, pino } from 'pino';

export type { Logger };

export function createLogger(level = process.env.SLUICE_LOG_LEVEL ?? 'info', pretty = process.stdout.isTTY): Logger {
  const options = { level, base: { name: 'sluice' }, timestamp: pino.stdTimeFunctions.isoTime };
  if (pretty && process.env.SLUICE_LOG_FORMAT !== 'json') {
    return pino({
      ...options,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } },
    });
  }
  return pino(options);
}

/** A logger that discards everything (tests, offline commands). */
export const silentLogger: Logger = pino({ level: 'silent' });
