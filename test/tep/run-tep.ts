/**
 * `npm run tep`: the Tennessee Eastman Process test sets through the default multivariate detector
 * (one parameter set, streaming, a fresh detector per run learning from the run's own first rows),
 * beside a PCA-T² baseline fitted on d00_te's first 500 rows, in the same run on the same data.
 *
 *   npm run tep [-- --options JSON] [--tep DIR]
 */
import { parseArgs } from 'node:util';
import { MultivariateDetector } from '../../src/analytics/detectors/multivariate.js';
import { pcaT2Baseline, replayTep, type RunScore, TEP_DIR } from './tep.js';

const { values } = parseArgs({
  options: { options: { type: 'string' }, tep: { type: 'string', default: TEP_DIR } },
});
// --options is for exploring; the reported figures use none: the defaults, for every run.
const opts = values.options ? JSON.parse(values.options) : {};
const t0 = process.hrtime.bigint();
const mv = replayTep((p) => new MultivariateDetector(p, opts), opts.threshold ?? 0.5, values.tep);
const ms = Number(process.hrtime.bigint() - t0) / 1e6;
const base = pcaT2Baseline(values.tep);

const pct = (a: number, b: number) => (b > 0 ? `${((100 * a) / b).toFixed(1)}%` : '-');
const far = (s: RunScore[]) => {
  const rows = s.reduce((a, r) => a + r.normalRows, 0);
  return { rows, rate: pct(s.reduce((a, r) => a + r.falseAlarms, 0), rows) };
};
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const out: string[] = [];
out.push(`TEP (${values.tep}): multivariate (defaults${values.options ? ` + ${values.options}` : ''}) vs PCA-T² baseline (${base.components} components, 99% limit ${base.limit.toFixed(1)}, fitted on d00 rows 1-500)`);
out.push('run   | mv detect  delay | pca detect delay | mv FAR(1-160) pca FAR(1-160)');
for (let i = 0; i < mv.length; i++) {
  const m = mv[i];
  const b = base.scores[i];
  if (m.name === 'd00') continue;
  out.push(
    `${m.name}   | ${pct(m.detected, m.faultRows).padStart(9)} ${String(m.delay ?? '-').padStart(5)} | ${pct(b.detected, b.faultRows).padStart(9)} ${String(b.delay ?? '-').padStart(5)} | ${pct(m.falseAlarms, m.normalRows).padStart(9)} ${pct(b.falseAlarms, b.normalRows).padStart(13)}`,
  );
}
const faults = (s: RunScore[]) => s.filter((r) => r.name !== 'd00');
const d00 = (s: RunScore[]) => s.filter((r) => r.name === 'd00');
const summary = (label: string, s: RunScore[]) => {
  const f = faults(s);
  const delays = f.map((r) => r.delay ?? 800);
  const detected = f.filter((r) => r.delay !== undefined).length;
  const n = far(d00(s));
  const all = far(s);
  return `${label}: FAR d00 ${n.rate} of ${n.rows} rows, FAR all normal rows ${all.rate} of ${all.rows}; mean detection rate ${pct(f.reduce((a, r) => a + r.detected, 0), f.reduce((a, r) => a + r.faultRows, 0))}; faults detected ${detected}/${f.length}; median delay ${median(delays)} rows (never detected counted as 800)`;
};
out.push(summary('multivariate', mv));
out.push(summary('pca-t2      ', base.scores));
out.push(`replay: ${mv.length} runs in ${ms.toFixed(0)} ms`);
process.stdout.write(`${out.join('\n')}\n`);
