/**
 * `sluice detect --input CSV --output CSV [--detector NAME|JSON] [--contributions]`
 * (shared/CONTRACT.md): replays a CSV offline, for tuning. A `timestamp` column and one value
 * column: `timestamp,value,anomaly_score` through `auto` (default) or any single-series detector.
 * Several value columns: `timestamp,anomaly_score` through `multivariate` (default), with
 * `--contributions` also `contribution_<column>`, each column's share of the deviation.
 * Separators `,` `;` tab; decimal commas with `;` or tab. A CSV it cannot read is refused with the
 * line number (exit 1), and nothing is written.
 */
import { createReadStream, createWriteStream, renameSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { createDetector, createVectorDetector, detectorSpec } from '../../analytics/detectors/index.js';
import { CsvError, replayStream } from '../../analytics/replay.js';
import type { DetectorRef } from '../../analytics/schema.js';
import { parseFlags, required, UsageError } from '../args.js';

export default async function detect(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    input: { type: 'string', short: 'i' },
    output: { type: 'string', short: 'o' },
    detector: { type: 'string', short: 'd' },
    contributions: { type: 'boolean', default: false },
  });
  const input = required(values.input, '--input');
  const output = required(values.output, '--output');
  let ref: unknown = values.detector;
  if (values.detector?.trim().startsWith('{')) {
    try {
      ref = JSON.parse(values.detector);
    } catch {
      throw new UsageError(`--detector ${values.detector} is neither a detector name nor a JSON spec`);
    }
  }
  if (ref !== undefined) {
    try {
      detectorSpec(ref as DetectorRef);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
  const source = createReadStream(input);
  try {
    await once(source, 'open');
  } catch (err) {
    process.stderr.write(`sluice detect: cannot read ${input}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`);
    return 1;
  }
  // Written beside the target and renamed at the end: a refused CSV leaves no half a result.
  const tmp = `${output}.tmp-${process.pid}`;
  const sink = createWriteStream(tmp);
  let writeError: Error | undefined;
  sink.on('error', (err) => (writeError ??= err));
  let detectorType = '';
  try {
    await once(sink, 'open');
    const result = await replayStream(
      source,
      async (line) => {
        if (writeError) throw writeError;
        if (!sink.write(`${line}\n`)) await once(sink, 'drain');
      },
      {
        single: () => {
          const d = usage(() => createDetector((ref ?? 'auto') as DetectorRef));
          detectorType = d.type;
          return d;
        },
        vector: (columns) => {
          const d = usage(() => createVectorDetector((ref ?? 'multivariate') as DetectorRef, columns.length));
          detectorType = `${d.type}, ${columns.length} columns`;
          return d;
        },
        contributions: values.contributions,
      },
    );
    await new Promise<void>((resolve, reject) => sink.end((err?: Error | null) => (err ? reject(err) : resolve())));
    if (writeError) throw writeError;
    renameSync(tmp, output);
    if (result.emptyCells > 0) {
      process.stderr.write(`sluice detect: ${result.emptyCells} empty value cells in ${input}: a row with one is scored 0 (one column) or judged with the column's last value (several)\n`);
    }
    process.stdout.write(`${result.rows} rows, ${result.anomalies} anomalies (${detectorType}) written to ${output}\n`);
    return 0;
  } catch (err) {
    source.destroy();
    sink.destroy();
    rmSync(tmp, { force: true });
    if (err instanceof UsageError) throw err;
    if (err instanceof CsvError) process.stderr.write(`sluice detect: ${input}: ${err.message}\n`);
    else if ((err as NodeJS.ErrnoException).code) {
      process.stderr.write(`sluice detect: cannot write ${output}: ${(err as NodeJS.ErrnoException).code}\n`);
    } else throw err;
    return 1;
  }
}

/** A detector that does not fit the CSV's shape (auto on several columns) is the caller's mistake. */
function usage<T>(make: () => T): T {
  try {
    return make();
  } catch (err) {
    throw new UsageError(`${(err as Error).message} (--detector)`);
  }
}
