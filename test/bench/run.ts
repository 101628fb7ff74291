/**
 * `npm run bench -- [--out FILE] [--only NAME]... [--quick]`: runs every case module in
 * test/bench/cases/ (README.md) one after another and writes the contract's
 * `{"machine": {...}, "results": [...]}` JSON. A case that throws or overruns is reported, and the
 * others still run.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { BenchCase, BenchContext, BenchResult } from './types.js';

const here = dirname(fileURLToPath(import.meta.url));
// dist/test/bench → repository root
const root = resolve(here, '..', '..', '..');

async function loadCases(): Promise<BenchCase[]> {
  const dir = join(here, 'cases');
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.js'))
    .sort();
  const out: BenchCase[] = [];
  for (const f of files) {
    const mod = (await import(pathToFileURL(join(dir, f)).href)) as { default?: BenchCase | BenchCase[] };
    const d = mod.default;
    if (!d) {
      process.stderr.write(`bench: ${f} has no default export; skipped\n`);
      continue;
    }
    out.push(...(Array.isArray(d) ? d : [d]));
  }
  return out;
}

function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Math.abs(n) >= 1000) return Math.round(n).toLocaleString('en-US');
  return Number(n.toPrecision(3)).toString();
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' },
      only: { type: 'string', multiple: true },
      quick: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const cases = (await loadCases()).filter((c) => !values.only?.length || values.only.some((o) => c.name.includes(o)));
  const results: Array<BenchResult & { case: string }> = [];
  const errors: Array<{ case: string; error: string }> = [];
  const t0 = Date.now();
  for (const c of cases) {
    const temps: string[] = [];
    const ctx: BenchContext = {
      quick: values.quick ?? false,
      root,
      tempDir: (prefix = 'sluice-bench-') => {
        const d = mkdtempSync(join(tmpdir(), prefix));
        temps.push(d);
        return d;
      },
      log: (m) => process.stderr.write(`[${c.name}] ${m}\n`),
    };
    process.stderr.write(`bench: ${c.name}: ${c.description}\n`);
    const started = Date.now();
    const budget = c.timeoutMs ?? 180_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      const rs = await Promise.race([
        c.run(ctx),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`overran its ${budget} ms budget`)), budget);
        }),
      ]);
      for (const r of rs) results.push({ case: c.name, ...r });
      process.stderr.write(`bench: ${c.name} done in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    } catch (err) {
      errors.push({ case: c.name, error: (err as Error).message });
      process.stderr.write(`bench: ${c.name} FAILED: ${(err as Error).stack ?? err}\n`);
    } finally {
      clearTimeout(timer);
      for (const d of temps) rmSync(d, { recursive: true, force: true });
    }
    (globalThis as { gc?: () => void }).gc?.();
  }
  const cpu = cpus();
  const report = {
    machine: {
      cpus: cpu.length,
      model: cpu[0]?.model ?? 'unknown',
      memMB: Math.round(totalmem() / 1024 / 1024),
      node: process.version,
      kernel: release(),
      arch: process.arch,
    },
    startedAt: new Date(t0).toISOString(),
    durationSeconds: Math.round((Date.now() - t0) / 1000),
    quick: values.quick ?? false,
    results,
    errors,
  };
  if (values.out) writeFileSync(values.out, `${JSON.stringify(report, null, 2)}\n`);
  const rows = results.map((r) => [
    r.name,
    `${fmt(r.value)} ${r.unit}`,
    r.baseline !== undefined ? `${fmt(r.baseline)} (${r.baselineName ?? 'baseline'})` : '',
    r.ratio !== undefined ? `${fmt(r.ratio)}x` : '',
    r.target ?? '',
    r.pass === undefined ? '' : r.pass ? 'ok' : 'MISSED',
  ]);
  const head = ['figure', 'value', 'baseline', 'ratio', 'target', ''];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  process.stdout.write(`${line(head)}\n${rows.map(line).join('\n')}\n`);
  for (const e of errors) process.stdout.write(`ERROR ${e.case}: ${e.error}\n`);
  return errors.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`bench: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
