import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { tempDir } from '../../../test/helpers/peers.js';
import { UsageError } from '../args.js';
import detect from './detect.js';

const dirs: { cleanup(): void }[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) d.cleanup();
  vi.restoreAllMocks();
});

function csv(rows: string[]): { input: string; output: string } {
  const d = tempDir('sluice-detect-');
  dirs.push(d);
  const input = join(d.path, 'in.csv');
  writeFileSync(input, `timestamp,value\n${rows.join('\n')}\n`);
  return { input, output: join(d.path, 'out.csv') };
}

function quiet() {
  const err: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
    err.push(String(s));
    return true;
  });
  return err;
}

describe('sluice detect', () => {
  it('writes timestamp,value,anomaly_score for every row, scores in [0, 1], the spike flagged', async () => {
    const rows = Array.from({ length: 400 }, (_, i) => {
      const t = new Date(Date.UTC(2024, 0, 1) + i * 300_000).toISOString().replace('T', ' ').slice(0, 19);
      return `${t},${i === 300 ? 95 : (50 + 10 * Math.sin(i / 8)).toFixed(3)}`;
    });
    const { input, output } = csv(rows);
    quiet();
    expect(await detect(['--input', input, '--output', output])).toBe(0);
    const lines = readFileSync(output, 'utf8').trim().split('\n');
    expect(lines[0]).toBe('timestamp,value,anomaly_score');
    expect(lines).toHaveLength(401);
    const scores = lines.slice(1).map((l) => Number(l.split(',')[2]));
    for (const s of scores) expect(s >= 0 && s <= 1).toBe(true);
    expect(lines[301].startsWith(rows[300])).toBe(true);
    expect(scores[300]).toBe(1);
    expect(Math.max(...scores.slice(0, 300))).toBeLessThan(0.55);
  });

  it('takes a detector by name or as a JSON spec', async () => {
    const { input, output } = csv(['2024-01-01 00:00:00,1', '2024-01-01 00:05:00,20', '2024-01-01 00:10:00,2']);
    quiet();
    expect(await detect(['-i', input, '-o', output, '--detector', '{"type":"threshold","high":10}'])).toBe(0);
    expect(readFileSync(output, 'utf8').trim().split('\n').slice(1).map((l) => Number(l.split(',')[2]) > 0)).toEqual([false, true, false]);
    expect(await detect(['-i', input, '-o', output, '--detector', 'zscore'])).toBe(0);
  });

  it('keeps rows without a number with score 0 and says so in one sentence', async () => {
    const { input, output } = csv(['2024-01-01 00:00:00,1', '2024-01-01 00:05:00,oops', '2024-01-01 00:10:00,2']);
    const err = quiet();
    expect(await detect(['--input', input, '--output', output])).toBe(0);
    expect(readFileSync(output, 'utf8').trim().split('\n')).toEqual([
      'timestamp,value,anomaly_score',
      '2024-01-01 00:00:00,1,0',
      '2024-01-01 00:05:00,oops,0',
      '2024-01-01 00:10:00,2,0',
    ]);
    expect(err.join('')).toBe(`sluice detect: 1 of 3 rows of ${input} have no numeric value (first at line 3); they are kept with score 0\n`);
  });

  it('is a usage error without --input or with an unknown detector; a missing file exits 1', async () => {
    const err = quiet();
    await expect(detect(['--output', 'x.csv'])).rejects.toThrow(UsageError);
    await expect(detect(['--input', 'a', '--output', 'b', '--detector', 'magic'])).rejects.toThrow(/detector "magic"/);
    expect(await detect(['--input', '/nonexistent/in.csv', '--output', '/tmp/x.csv'])).toBe(1);
    expect(err.join('')).toContain('cannot read /nonexistent/in.csv: ENOENT');
  });

  it('reads quoted fields and CSVs with the columns in another order', async () => {
    const d = tempDir('sluice-detect-');
    dirs.push(d);
    const input = join(d.path, 'q.csv');
    const output = join(d.path, 'q.out.csv');
    writeFileSync(input, '"value","timestamp"\n"1.5","2024-01-01 00:00:00"\n"30","2024-01-01 00:05:00"\n');
    quiet();
    expect(await detect(['-i', input, '-o', output, '-d', '{"type":"threshold","high":10}'])).toBe(0);
    expect(readFileSync(output, 'utf8').trim().split('\n').slice(1).map((l) => l.split(',').slice(0, 2).join(','))).toEqual([
      '2024-01-01 00:00:00,1.5',
      '2024-01-01 00:05:00,30',
    ]);
    expect(Number(readFileSync(output, 'utf8').trim().split('\n')[2].split(',')[2])).toBeGreaterThan(0);
  });
});
