/**
 * `sluice detect --input CSV --output CSV [--detector NAME]` (shared/CONTRACT.md): replays a
 * `timestamp,value` CSV through one detector offline, for tuning, and writes
 * `timestamp,value,anomaly_score` with the score in [0, 1]. `--detector` takes a name (`auto`, the
 * default, `zscore`, ...) or a JSON spec with options (`{"type":"zscore","threshold":4}`).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createDetector } from '../../analytics/detectors/index.js';
import { replayCsv } from '../../analytics/replay.js';
import { parseFlags, required, UsageError } from '../args.js';

export default async function detect(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    input: { type: 'string', short: 'i' },
    output: { type: 'string', short: 'o' },
    detector: { type: 'string', short: 'd', default: 'auto' },
  });
  const input = required(values.input, '--input');
  const output = required(values.output, '--output');
  const name = values.detector ?? 'auto';
  let ref: unknown = name;
  if (name.trim().startsWith('{')) {
    try {
      ref = JSON.parse(name);
    } catch {
      throw new UsageError(`--detector ${name} is neither a detector name nor a JSON spec`);
    }
  }
  let detector: ReturnType<typeof createDetector>;
  try {
    detector = createDetector(ref as string);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  let text: string;
  try {
    text = readFileSync(input, 'utf8');
  } catch (err) {
    process.stderr.write(
      `sluice detect: cannot read ${input}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`,
    );
    return 1;
  }
  const result = replayCsv(text, detector);
  try {
    writeFileSync(output, result.csv);
  } catch (err) {
    process.stderr.write(
      `sluice detect: cannot write ${output}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`,
    );
    return 1;
  }
  if (result.badRows > 0) {
    process.stderr.write(
      `sluice detect: ${result.badRows} of ${result.rows} rows of ${input} have no numeric value (first at line ${result.firstBadLine}); they are kept with score 0\n`,
    );
  }
  process.stdout.write(`${result.rows} rows, ${result.anomalies} anomalies (${detector.type}) written to ${output}\n`);
  return 0;
}
