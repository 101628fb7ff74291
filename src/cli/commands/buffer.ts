/**
 * `sluice buffer stats|tail|export --data DIR`: inspects a stopped gateway's ring log (the one in
 * DIR/ringlog). Opens it for inspection only: nothing is repaired, moved or written. `export`
 * writes every event as one JSON line (NDJSON), in seq order, to stdout or `--out FILE`.
 */

import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { LevelRingLog, RingLogOpenError } from '../../../buffer/ring-log.js';
import { parseFlags, required, UsageError } from '../args.js';
import { usageOf } from '../help.js';

const USAGE = usageOf('buffer');

export default async function buffer(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    args,
    {
      data: { type: 'string', short: 'd' },
      n: { type: 'string', short: 'n' },
      out: { type: 'string', short: 'o' },
      from: { type: 'string' },
      to: { type: 'string' },
      json: { type: 'boolean' },
    },
    true,
  );
  const sub = positionals[0];
  if (!sub || !['stats', 'tail', 'export'].includes(sub) || positionals.length > 1) throw new UsageError(USAGE);
  const dir = required(values.data, '--data');
  const int = (v: string | undefined, flag: string, dflt: number) => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0) throw new UsageError(`${flag} must be a whole number, not "${v}"`);
    return n;
  };
  const n = int(values.n, '-n', 20);
  const from = int(values.from, '--from', 0);
  const to = int(values.to, '--to', Number.MAX_SAFE_INTEGER);
  if (from > to) throw new UsageError(`--from ${from} is after --to ${to}: nothing could be exported`);

  const log = new LevelRingLog({
    dir,
    gatewayId: 'inspect',
    config: {
      maxBytes: Number.MAX_SAFE_INTEGER,
      onFull: 'drop-oldest',
      retention: Number.MAX_SAFE_INTEGER,
      commitInterval: 5,
      commitEvents: 2000,
      diskReserve: 0,
    },
    readOnly: true,
  });
  try {
    await log.open();
  } catch (err) {
    process.stderr.write(
      `sluice buffer: ${err instanceof RingLogOpenError ? err.message : `cannot read the ring log in ${dir}: ${(err as Error).message}`}\n`,
    );
    return 1;
  }
  try {
    if (sub === 'stats') {
      const s = { ...log.stats(), readers: log.readerStats() };
      delete (s as { bytesWritten?: number }).bytesWritten;
      delete (s as { commits?: number }).commits;
      if (values.json) process.stdout.write(`${JSON.stringify(s)}\n`);
      else process.stdout.write(formatStats(s));
      return 0;
    }
    if (sub === 'tail') {
      for (const e of await log.tail(n)) process.stdout.write(`${e.json}\n`);
      return 0;
    }
    return await exportEvents(log, from, to, values.out);
  } finally {
    await log.close();
  }
}

/** Progress on stderr at most this often, when stderr is a terminal. */
const PROGRESS_MS = 1000;

/**
 * Writes events from..to as NDJSON. A target that cannot be written is one sentence and exit 1; a
 * reader that goes away (`| head`) ends the export quietly with exit 0, as other Unix tools do.
 */
async function exportEvents(log: LevelRingLog, from: number, to: number, file: string | undefined): Promise<number> {
  const out: Writable = file ? createWriteStream(file) : process.stdout;
  let failure: NodeJS.ErrnoException | undefined;
  const failed = new Promise<void>((resolve) =>
    out.once('error', (err: NodeJS.ErrnoException) => {
      failure = err;
      resolve();
    }),
  );
  const progress = process.stderr.isTTY;
  let count = 0;
  let shownAt = performance.now();
  for await (const e of log.scan(from, to)) {
    if (failure) break;
    if (!out.write(`${e.json}\n`)) await Promise.race([once(out, 'drain'), failed]);
    count++;
    if (progress && performance.now() - shownAt > PROGRESS_MS) {
      shownAt = performance.now();
      process.stderr.write(`\rsluice buffer: ${count} events exported (seq ${e.seq})`);
    }
  }
  if (file && !failure) {
    out.end();
    await Promise.race([once(out, 'finish'), failed]);
  }
  if (progress && count > 0) process.stderr.write('\n');
  if (failure?.code === 'EPIPE') return 0;
  if (failure) {
    process.stderr.write(`sluice buffer: cannot write ${file ?? 'to stdout'} (${failure.code ?? failure.message})\n`);
    return 1;
  }
  if (file) process.stderr.write(`sluice buffer: exported ${count} events to ${file}\n`);
  return 0;
}

function formatStats(
  s: ReturnType<LevelRingLog['stats']> & { readers: ReturnType<LevelRingLog['readerStats']> },
): string {
  const age =
    s.oldestTs === null
      ? '-'
      : `${new Date(s.oldestTs).toISOString()} (${Math.round((Date.now() - s.oldestTs) / 1000)} s ago)`;
  const lines = [
    `events       ${s.events}`,
    `bytes        ${s.bytes}`,
    `seq          ${s.events ? `${s.firstSeq}..${s.lastSeq}` : `none held (last ${s.lastSeq})`}`,
    `oldest       ${age}`,
    `evicted      ${s.evicted}${Object.keys(s.evictedByReason).length ? ` ${JSON.stringify(s.evictedByReason)}` : ''}`,
    `quarantined  ${s.quarantined}`,
    `refused      ${s.refused}`,
    'readers:',
    ...(s.readers.length
      ? s.readers.map(
          (r) => `  ${r.name}: committed ${r.committedSeq}, pending ${r.pendingEvents}, skipped ${r.skipped}`,
        )
      : ['  (none)']),
  ];
  return `${lines.join('\n')}\n`;
}
