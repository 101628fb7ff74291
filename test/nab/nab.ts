/**
 * Replays NAB (the Numenta Anomaly Benchmark: shared/datasets/nab) through a detector, streaming,
 * one fresh detector per series and one parameter set for the whole corpus, and scores the result
 * with the shared NAB scorer (standard profile). Used by `npm run nab` and by the CI floor test.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Detector } from '../../src/analytics/detectors/detector.js';
import { replayCsv } from '../../src/analytics/replay.js';

export const NAB_DIR = process.env.NAB_DIR ?? '/work/shared/datasets/nab';
export const NAB_SCORER = process.env.NAB_SCORER ?? '/work/shared/tools/nab_score.py';

export interface ReplayStats {
  files: number;
  events: number;
  /** Time in replay (CSV parsing and writing included), ns. */
  ns: bigint;
}

/** Writes one score file per series into `out`, laid out like NAB's data/ folder. */
export function replayCorpus(out: string, make: () => Detector, only?: string[], nab = NAB_DIR): ReplayStats {
  const stats: ReplayStats = { files: 0, events: 0, ns: 0n };
  for (const category of readdirSync(join(nab, 'data'), { withFileTypes: true })) {
    if (!category.isDirectory() || (only && !only.includes(category.name))) continue;
    mkdirSync(join(out, category.name), { recursive: true });
    for (const file of readdirSync(join(nab, 'data', category.name)).sort()) {
      if (!file.endsWith('.csv')) continue;
      const text = readFileSync(join(nab, 'data', category.name, file), 'utf8');
      const detector = make();
      const t0 = process.hrtime.bigint();
      const r = replayCsv(text, detector);
      stats.ns += process.hrtime.bigint() - t0;
      stats.events += r.rows;
      stats.files++;
      writeFileSync(join(out, category.name, file), r.csv);
    }
  }
  return stats;
}

/** Runs the NAB scorer; returns its report and the normalised score. */
export async function scoreCorpus(scores: string, only?: string[], nab = NAB_DIR): Promise<{ report: string; score: number }> {
  const args = [NAB_SCORER, '--nab', nab, '--scores', scores];
  if (only) args.push('--only', ...only);
  const python = process.env.NAB_PYTHON ?? 'python3';
  const { stdout } = await promisify(execFile)(python, args, { encoding: 'utf8' });
  const m = /score: (-?[\d.]+)/.exec(stdout);
  if (!m) throw new Error(`the NAB scorer printed no score: ${stdout}`);
  return { report: stdout, score: Number(m[1]) };
}
