import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
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

  it('refuses a value that is not a number with its line, and writes nothing', async () => {
    const { input, output } = csv(['2024-01-01 00:00:00,1', '2024-01-01 00:05:00,oops', '2024-01-01 00:10:00,2']);
    const err = quiet();
    expect(await detect(['--input', input, '--output', output])).toBe(1);
    expect(existsSync(output)).toBe(false);
    expect(readdirSync(dirname(output))).toEqual(['in.csv']);
    expect(err.join('')).toBe(`sluice detect: ${input}: line 3: "oops" in column value is not a number\n`);
  });

  it('keeps a row with an empty value in its place, scored 0, and says so', async () => {
    const { input, output } = csv(['2024-01-01 00:00:00,1', '2024-01-01 00:05:00,', '2024-01-01 00:10:00,2']);
    const err = quiet();
    expect(await detect(['--input', input, '--output', output])).toBe(0);
    expect(readFileSync(output, 'utf8').trim().split('\n')).toEqual([
      'timestamp,value,anomaly_score',
      '2024-01-01 00:00:00,1,0',
      '2024-01-01 00:05:00,,0',
      '2024-01-01 00:10:00,2,0',
    ]);
    expect(err.join('')).toMatch(/^sluice detect: 1 empty value cells in /);
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

  it('reads ; separators, decimal commas and quoted timestamps with commas', async () => {
    const d = tempDir('sluice-detect-');
    dirs.push(d);
    const input = join(d.path, 'eu.csv');
    const output = join(d.path, 'eu.out.csv');
    writeFileSync(input, 'timestamp;value\n"2024-01-01T00:00:00Z";1,5\n"2024-01-01T00:05:00Z";30,25\n"Jan 1, 2024 00:10:00 UTC";2\n');
    quiet();
    expect(await detect(['-i', input, '-o', output, '-d', '{"type":"threshold","high":10}'])).toBe(0);
    const lines = readFileSync(output, 'utf8').trim().split('\n');
    expect(lines.map((l) => l.replace(/,[^,]*$/, ''))).toEqual(['timestamp,value', '2024-01-01T00:00:00Z,1.5', '2024-01-01T00:05:00Z,30.25', '"Jan 1, 2024 00:10:00 UTC",2']);
    expect(lines.map((l) => Number(l.split(',').at(-1)) > 0)).toEqual([false, false, true, false]);
  });

  it('judges several columns together: timestamp,anomaly_score and the contributions', async () => {
    const d = tempDir('sluice-detect-');
    dirs.push(d);
    const input = join(d.path, 'pump.csv');
    const output = join(d.path, 'pump.out.csv');
    const rows = ['timestamp,current,flow'];
    for (let i = 0; i < 400; i++) {
      const load = Math.sin(i / 10);
      // From row 300 the flow stops following the current (inside its own range).
      const flow = i >= 300 ? -load : load;
      rows.push(`${1_700_000_000 + i},${(8 + load + 0.01 * Math.cos(i * 7)).toFixed(3)},${(10 + 2 * flow + 0.02 * Math.sin(i * 13)).toFixed(3)}`);
    }
    writeFileSync(input, `${rows.join('\n')}\n`);
    quiet();
    expect(await detect(['-i', input, '-o', output, '--contributions'])).toBe(0);
    const out = readFileSync(output, 'utf8').trim().split('\n');
    expect(out[0]).toBe('timestamp,anomaly_score,contribution_current,contribution_flow');
    expect(out).toHaveLength(401);
    const score = out.slice(1).map((l) => Number(l.split(',')[1]));
    expect(Math.max(...score.slice(0, 299))).toBeLessThan(0.5);
    expect(score.slice(300, 330).some((s) => s >= 0.5)).toBe(true);
    for (const l of out.slice(1)) {
      const [, s, a, b] = l.split(',').map(Number);
      expect(s >= 0 && s <= 1).toBe(true);
      if (a + b > 0) expect(a + b).toBeCloseTo(1, 3);
    }
  });

  it('refuses a row of the wrong width and a broken quote with the line number', async () => {
    const d = tempDir('sluice-detect-');
    dirs.push(d);
    const err = quiet();
    const input = join(d.path, 'bad.csv');
    writeFileSync(input, 'timestamp,a,b\n1700000000,1,2\n1700000001,1\n');
    expect(await detect(['-i', input, '-o', join(d.path, 'o.csv')])).toBe(1);
    expect(err.join('')).toMatch(/line 3/);
    writeFileSync(input, 'timestamp,value\n"1700000000,1\n');
    expect(await detect(['-i', input, '-o', join(d.path, 'o.csv')])).toBe(1);
    expect(err.join('')).toMatch(/bad\.csv: .*line 2/);
    writeFileSync(input, 'timestamp,value\nyesterday,1\n');
    expect(await detect(['-i', input, '-o', join(d.path, 'o.csv')])).toBe(1);
    expect(err.join('')).toContain('line 2: "yesterday" is not a timestamp');
    expect(existsSync(join(d.path, 'o.csv'))).toBe(false);
  });
});
