/** Logging: pino, JSON lines by default (for journald and log shippers), pretty in a terminal. */
import { type Logger, pino } from 'pino';
import { scrubCredentials } from './scrub.js';

export type { Logger };

/**
 * Log lines often name a peer by its URL; a URL's user-info password (and connection-string keys)
 * must not reach the journal. String arguments and the string fields of the merge object (one level,
 * plus an error's message) are scrubbed before pino formats them.
 */
const hooks = {
  logMethod(this: Logger, args: unknown[], method: (...a: unknown[]) => void) {
    method.apply(
      this,
      args.map((a) => (typeof a === 'string' ? scrubCredentials(a) : a && typeof a === 'object' ? scrubFields(a) : a)),
    );
  },
};

function scrubFields(o: object): object {
  let out: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(o)) {
    let clean: unknown = v;
    if (typeof v === 'string') clean = scrubCredentials(v);
    else if (v instanceof Error && scrubCredentials(v.message) !== v.message) {
      clean = { type: v.name, message: scrubCredentials(v.message), code: (v as NodeJS.ErrnoException).code };
    }
    if (clean !== v) (out ??= { ...o })[k] = clean;
  }
  return out ?? o;
}

/** syslog priorities of pino's levels (trace and debug: 7, info 6, warn 4, error 3, fatal 2). */
const PRIORITY: Record<string, number> = { '10': 7, '20': 7, '30': 6, '40': 4, '50': 3, '60': 2 };

/**
 * `SLUICE_LOG_FORMAT=journald`: each JSON line starts with its syslog priority (`<4>{...}`), which
 * journald takes as the entry's priority and strips, so `journalctl -p warning -u sluice` works.
 */
export function journaldLine(line: string): string {
  const level = /^\{"level":(\d+)/.exec(line)?.[1];
  return `<${(level && PRIORITY[level]) ?? 6}>${line}`;
}

export function createLogger(
  level = process.env.SLUICE_LOG_LEVEL ?? 'info',
  pretty = process.stdout.isTTY,
  destination?: pino.DestinationStream,
): Logger {
  const format = process.env.SLUICE_LOG_FORMAT;
  const options = {
    level,
    base: { name: 'sluice' },
    timestamp: pino.stdTimeFunctions.isoTime,
    hooks: format === 'journald' ? { ...hooks, streamWrite: journaldLine } : hooks,
  };
  if (pretty && format !== 'json' && format !== 'journald') {
    return pino({
      ...options,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } },
    });
  }
  return destination ? pino(options, destination) : pino(options);
}

/** A logger that discards everything (tests, offline commands). */
export const silentLogger: Logger = pino({ level: 'silent' });
