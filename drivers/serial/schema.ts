/** Options of the serial line driver: a device that prints lines (text, JSON, or NMEA from a GPS). */
import { z } from 'zod';
import { duration, name, size, topicName, republishSchema } from '../../src/core/config-types.js';

export const serialSchema = z
  .strictObject({
    name: name(),
    type: z.literal('serial'),
    enabled: z.boolean().default(true),
    /** Also publish each reading on the gateway's own broker, once durable (off unless set). */
    republish: republishSchema.optional(),
    path: z.string().min(1),
    baudRate: z.number().int().positive().default(9600),
    dataBits: z.union([z.literal(5), z.literal(6), z.literal(7), z.literal(8)]).default(8),
    parity: z.enum(['none', 'even', 'odd']).default('none'),
    stopBits: z.union([z.literal(1), z.literal(2)]).default(1),
    /**
     * `lines`: text lines, parsed by `pattern` (a regex with named groups, one reading per group) or
     * else as `key=value` pairs; `json-lines`: one JSON value per line, the payload as is;
     * `nmea`: GGA and RMC sentences of a GPS, checksums verified.
     */
    format: z.enum(['lines', 'json-lines', 'nmea']).default('lines'),
    /** Readings go to `<topic>/<group or key>` (`lines`), `<topic>` (`json-lines`), `<topic>/<quantity>` (`nmea`: lat, lon, altitude, ...). */
    topic: topicName(),
    /** Ends a record; `\r` before a `\n` delimiter is dropped too. */
    delimiter: z.string().min(1).max(8).default('\n'),
    /** A regex with named groups for `lines`, e.g. `T=(?<temp>[-\d.]+) H=(?<hum>[\d.]+)`. */
    pattern: z.string().optional(),
    /** Unit per group or key (`{temp: "°C"}`), added to the readings. */
    units: z.record(z.string(), z.string()).default({}),
    /** A longer record is discarded and counted (`too-long`): bounded memory whatever the line sends. */
    maxLineBytes: size().default(4096),
    /** Longest wait between attempts to reopen a port that is gone (unplugged, not there yet). */
    maxBackoff: duration().default(30_000),
    /** The device is `degraded` when no valid record arrived for this long (0: never). */
    staleAfter: duration().default(0),
  })
  .superRefine((cfg, ctx) => {
    if (cfg.pattern === undefined) return;
    if (cfg.format !== 'lines') {
      ctx.addIssue({ code: 'custom', path: ['pattern'], message: 'applies to format "lines" only' });
      return;
    }
    try {
      const re = new RegExp(cfg.pattern);
      if (!/\(\?<[A-Za-z_$][\w$]*>/.test(re.source)) {
        ctx.addIssue({ code: 'custom', path: ['pattern'], message: 'has no named group such as (?<temp>[-\\d.]+)' });
      }
    } catch (err) {
      ctx.addIssue({
        code: 'custom',
        path: ['pattern'],
        message: `is not a valid regular expression: ${(err as Error).message}`,
      });
    }
  });

export type SerialConfig = z.output<typeof serialSchema>;
