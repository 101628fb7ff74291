/** Process figures from /proc: anonymous resident memory and bytes written to storage. */
import { readFileSync } from 'node:fs';
import type { BenchResult } from './types.js';

/** RssAnon of `pid` in MB (anonymous memory: what the kernel cannot reclaim), or NaN. */
export function rssAnonMB(pid: number): number {
  try {
    const m = /RssAnon:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** Bytes `pid` caused to be written to storage (/proc/<pid>/io write_bytes), or NaN. */
export function writeBytes(pid: number): number {
  try {
    const m = /^write_bytes:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
    return m ? Number(m[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** Samples RssAnon of `pid` every `everyMs` and keeps the peak, until stop(). */
export function rssSampler(pid: number, everyMs = 100): { peak(): number; stop(): number } {
  let peak = 0;
  const sample = () => {
    const v = rssAnonMB(pid);
    if (v > peak) peak = v;
  };
  sample();
  const t = setInterval(sample, everyMs);
  return {
    peak: () => peak,
    stop: () => {
      clearInterval(t);
      sample();
      return peak;
    },
  };
}

/** CPU time of this process over `ms` of wall time, as % of one core. */
export async function cpuPercent(ms: number): Promise<number> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  const c = process.cpuUsage(c0);
  return ((c.user + c.system) / 1000 / (performance.now() - t0)) * 100;
}

/** Three significant digits, for figures of CPU and rates. */
export function sig3(v: number): number {
  return Number(v.toPrecision(3));
}

/** A CPU figure (% of one core) as a result beside the bare library's, measured the same way. */
export function cpuVsBare(name: string, cpu: number, bare: { name: string; cpu: number }, extra: Record<string, unknown>): BenchResult {
  return {
    name,
    value: sig3(cpu),
    unit: '%cpu',
    baseline: sig3(bare.cpu),
    baselineName: bare.name,
    ratio: bare.cpu > 0 ? sig3(cpu / bare.cpu) : undefined,
    ...extra,
  };
}
