/**
 * The `buffer:` section of the config (buffer/README.md "Options"), owned here as each plugin folder
 * owns its own; src/config/schema.ts composes it.
 */
import { z } from 'zod';
import { duration, size } from '../src/core/config-types.js';

/**
 * The fsync bound of a buffer config: its own, else the older `commitInterval` read as the least
 * time between fsyncs, else none. None by default: group commit paces itself (the next commit starts
 * when the one in flight is durable, so a disk whose fsync takes 5 ms, as an SD card's does, sees
 * 200 a second at most), and a bound that binds only on fast disks, where wear matters least, made
 * every PUBACK under load wait out its gap (a timer, at least a millisecond).
 */
export function fsyncBound(b: { maxFsyncsPerSecond?: number; commitInterval?: number }): number | undefined {
  if (b.maxFsyncsPerSecond !== undefined) return b.maxFsyncsPerSecond;
  if (b.commitInterval !== undefined) return b.commitInterval > 0 ? 1000 / b.commitInterval : undefined;
  return undefined;
}

export const bufferSchema = z
  .strictObject({
    /** Disk budget of the ring log, in bytes. */
    maxBytes: size().default(1024 ** 3),
    /** What happens when the budget is reached: evict the oldest events, or refuse new ones (back-pressure). */
    onFull: z.enum(['drop-oldest', 'reject']).default('drop-oldest'),
    /** Events older than this are evicted even when there is room. */
    retention: duration().default(30 * 86_400_000),
    /**
     * Group commit: fsyncs a second at most, to spare a worn SD card (none by default). A commit
     * starts as soon as the log is idle; with a bound it waits when the previous fsync began less
     * than 1/this ago.
     */
    maxFsyncsPerSecond: z.number().int().min(1).max(100_000).optional(),
    /** Older spelling of the fsync bound: the least time between two fsyncs (`5ms` = 200 a second). */
    commitInterval: duration().optional(),
    /** Group commit: a commit starts without waiting out the fsync bound once this many events wait. */
    commitEvents: z.number().int().min(1).max(100_000).default(2000),
    /** Free space the log always leaves on the data directory's filesystem. */
    diskReserve: size().default(64 * 1024 ** 2),
  })
  .prefault({})
  .transform((b) => ({ ...b, maxFsyncsPerSecond: fsyncBound(b) }));

/** The buffer config with every default filled in. */
export type BufferConfig = z.output<typeof bufferSchema>;

/**
 * What the ring log needs: a config built in code may leave the fsync bound out (`commitInterval`
 * or the default then applies, as when parsed).
 */
export type RingLogConfig = Omit<BufferConfig, 'maxFsyncsPerSecond'> & { maxFsyncsPerSecond?: number };
