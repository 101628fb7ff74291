/**
 * `npm run nab`: replays every NAB series through one detector (default `auto`, one parameter set
 * for the whole corpus, streaming), writes the score files laid out like NAB's data/ folder in a
 * temp dir, and runs the shared NAB scorer (standard profile) on them.
 *
 *   npm run nab [-- --detector NAME|JSON] [--nab DIR] [--only CATEGORY ...] [--keep]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { AutoDetector } from '../../src/analytics/detectors/auto.js';
import { createDetector } from '../../src/analytics/detectors/index.js';
import { NAB_DIR, replayCorpus, scoreCorpus } from './nab.js';

const { values } = parseArgs({
  options: {
    detector: { type: 'string', default: 'auto' },
    nab: { type: 'string', default: NAB_DIR },
    only: { type: 'string', multiple: true },
    keep: { type: 'boolean', default: false },
  },
});

const name = values.detector as string;
const ref = name.trim().startsWith('{') ? JSON.parse(name) : name;
// AUTO_OPTS (JSON of AutoOptions) is for exploring the auto detector's inner constants; the
// reported score uses none: one parameter set, the defaults, for the whole corpus.
const make = () => (process.env.AUTO_OPTS ? new AutoDetector(JSON.parse(process.env.AUTO_OPTS)) : createDetector(ref));
const out = mkdtempSync(join(tmpdir(), 'sluice-nab-'));
const stats = replayCorpus(out, make, values.only, values.nab);
const { report } = await scoreCorpus(out, values.only, values.nab);
process.stdout.write(report);
process.stdout.write(
  `detector=${name} files=${stats.files} events=${stats.events} replay=${(Number(stats.ns) / 1e3 / stats.events).toFixed(2)} µs/event (CSV parsing included; per-detector cost: npm run bench -- --only analytics)\n`,
);
if (values.keep) process.stdout.write(`score files kept in ${out}\n`);
else rmSync(out, { recursive: true, force: true });
