/**
 * `sluice detect` as an operator runs it: the compiled CLI (`npm run build`) in a child process, on
 * CSVs as spreadsheets export them, exit codes and messages as a shell sees them.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { PUMP_SENSORS, simulatedPump } from '../helpers/pump.js';
import { tempDir } from '../helpers/peers.js';

const ROOT = join(import.meta.dirname, '..', '..');
const dir = tempDir('sluice-detect-cli-');
afterAll(() => dir.cleanup());

async function sluice(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [join(ROOT, 'src/cli/bin.js'), ...args], { encoding: 'utf8' });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe.skipIf(!existsSync(join(ROOT, 'dist/src/cli/main.js')))('sluice detect (compiled CLI)', () => {
  it('scores a multi-column export with ; and decimal commas, one row per row, with contributions', async () => {
    const pump = simulatedPump(11);
    const lines = [`"timestamp";${PUMP_SENSORS.join(';')}`];
    for (let i = 0; i < 900; i++) {
      const r = pump(i, i >= 700);
      const t = new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString();
      lines.push(`"${t}";${PUMP_SENSORS.map((k) => String(r[k]).replace('.', ',')).join(';')}`);
    }
    const input = join(dir.path, 'pump.csv');
    const output = join(dir.path, 'pump.scores.csv');
    writeFileSync(input, `${lines.join('\r\n')}\r\n`);
    const r = await sluice('detect', '-i', input, '-o', output, '-d', '{"type":"multivariate","warmup":240}', '--contributions');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^900 rows, \d+ anomalies \(multivariate, 5 columns\)/);
    const out = readFileSync(output, 'utf8').trim().split('\n');
    expect(out[0]).toBe(`timestamp,anomaly_score,${PUMP_SENSORS.map((k) => `contribution_${k}`).join(',')}`);
    expect(out).toHaveLength(901);
    expect(out[1].startsWith('2026-01-01T00:00:00.000Z,')).toBe(true);
    const rows = out.slice(1).map((l) => l.split(',').slice(1).map(Number));
    const alarm = (i: number) => rows[i][0] >= 0.5;
    expect(rows.slice(240, 700).filter((_, i) => alarm(240 + i)).length).toBeLessThan(10);
    const firstAlarm = rows.findIndex((_, i) => i >= 700 && alarm(i));
    expect(firstAlarm - 700).toBeLessThan(60);
    // The broken link is the flow's.
    const c = rows[firstAlarm].slice(1);
    expect(PUMP_SENSORS[c.indexOf(Math.max(...c))]).toBe('flow');
  });

  it('refuses what it cannot read with the line number, exit 1, and writes nothing', async () => {
    const input = join(dir.path, 'bad.csv');
    const output = join(dir.path, 'bad.scores.csv');
    writeFileSync(input, 'timestamp,value\n2026-01-01 00:00:00,1.5\n2026-01-01 00:00:01,1.5.2\n');
    let r = await sluice('detect', '-i', input, '-o', output);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`sluice detect: ${input}: line 3: "1.5.2" in column value is not a number\n`);
    writeFileSync(input, 'timestamp;value\n"2026-01-01 00:00:00;1\n');
    r = await sluice('detect', '-i', input, '-o', output);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`sluice detect: ${input}: line 2: a quote opened here is never closed\n`);
    expect(existsSync(output)).toBe(false);
    // auto on several columns: a usage error (exit 2).
    writeFileSync(input, 'timestamp,a,b\n1767225600,1,2\n');
    r = await sluice('detect', '-i', input, '-o', output, '-d', 'auto');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('detector auto judges one series, not a vector of 2');
  });
});
