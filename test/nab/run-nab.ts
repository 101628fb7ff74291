/**
 * `npm run nab`: replays every NAB series through one detector (default `auto`, one parameter set
 * for the whole corpus, streaming), writes the score files laid out like NAB's data/ folder in a
 * temp dir, and runs the shared NAB scorer (standard profile) on them.
 *
 *   npm run nab [-- --detector NAME] [--nab DIR] [--only CATEGORY] [--keep]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { AutoDetector } from '../../src/analytics/detectors/auto.js';
import { createDetector } from '../../src/analytics/detectors/index.js';
import { replayCsv } from '../../src/analytics/replay.js';

const { values } = parseArgs({
  options: {
    detector: { type: 'string', default: 'auto' },
    nab: { type: 'string', default: process.env.NAB_DIR ?? '/work/shared/datasets/nab' },
    scorer: { type: 'string', default: process.env.NAB_SCORER ?? '/work/shared/tools/nab_score.py' },
    only: { type: 'string', multiple: true },
    keep: { type: 'boolean', default: false },
  },
});

const nab = values.nab as string;
const out = mkdtempSync(join(tmpdir(), 'sluice-nab-'));
let events = 0;
let ns = 0n;
for (const category of readdirSync(join(nab, 'data'), { withFileTypes: true })) {
  if (!category.isDirectory()) continue;
  if (values.only && !values.only.includes(category.name)) continue;
  mkdirSync(join(out, category.name), { recursive: true });
  for (const file of readdirSync(join(nab, 'data', category.name))) {
    if (!file.endsWith('.csv')) continue;
    const text = readFileSync(join(nab, 'data', category.name, file), 'utf8');
    // AUTO_OPTS (JSON of AutoOptions) is for exploring the auto detector's inner constants; the
    // reported score uses none: one parameter set, the defaults, for the whole corpus.
    const detector = process.env.AUTO_OPTS
      ? new AutoDetector(JSON.parse(process.env.AUTO_OPTS))
      : createDetector(values.detector as string);
    const t0 = process.hrtime.bigint();
    const r = replayCsv(text, detector);
    ns += process.hrtime.bigint() - t0;
    events += r.rows;
    writeFileSync(join(out, category.name, file), r.csv);
  }
}
const args = [values.scorer as string, '--nab', nab, '--scores', out];
if (values.only) args.push('--only', ...(values.only as string[]));
const python = process.env.NAB_PYTHON ?? 'python3';
const report = execFileSync(python, args, { encoding: 'utf8' });
process.stdout.write(report);
process.stdout.write(
  `detector=${values.detector} events=${events} replay=${(Number(ns) / 1e3 / events).toFixed(2)} µs/event (CSV parsing included)\n`,
);
if (values.keep) process.stdout.write(`score files kept in ${out}\n`);
else rmSync(out, { recursive: true, force: true });
