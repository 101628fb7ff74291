/** Global setup of the fault suite: names the report file, and prints the report at the end. */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Figures, REPORT_ENV } from './report.js';

export default function setup() {
  const file = join(tmpdir(), `sluice-faults-report-${process.pid}.ndjson`);
  writeFileSync(file, '');
  process.env[REPORT_ENV] = file;
  return () => {
    const rows = existsSync(file)
      ? readFileSync(file, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Figures & { section: string })
      : [];
    rmSync(file, { force: true });
    const sum = (k: keyof Figures) => rows.reduce((a, r) => a + (typeof r[k] === 'number' ? (r[k] as number) : 0), 0);
    const totals = {
      cases: sum('cases'),
      faults: sum('faults'),
      acknowledged: sum('acknowledged'),
      delivered: sum('delivered'),
      lost: sum('lost'),
      duplicates: sum('duplicates'),
      peakRssMiB: Math.round(Math.max(0, ...rows.map((r) => r.peakRssKb ?? 0)) / 102.4) / 10,
    };
    const lines = ['', '== Sluice fault suite report =='];
    for (const r of rows) {
      const { section, ...rest } = r;
      lines.push(`  ${section}: ${JSON.stringify(rest)}`);
    }
    lines.push(
      `  TOTAL cases tried ${totals.cases}, faults injected ${totals.faults}, events acknowledged ${totals.acknowledged}, delivered ${totals.delivered}, lost ${totals.lost}, duplicates ${totals.duplicates}, peak RSS ${totals.peakRssMiB} MiB`,
      '',
    );
    process.stdout.write(`${lines.join('\n')}\n`);
    const out = process.env.SLUICE_FAULTS_REPORT_OUT;
    if (out) writeFileSync(out, `${JSON.stringify({ totals, sections: rows }, null, 2)}\n`);
  };
}
