/**
 * The Tennessee Eastman Process test sets (shared/datasets/tep) replayed through a streaming vector
 * detector, one fresh detector per run, rows one by one (3 minutes apart), and scored: false alarms
 * on normal rows, detection rate on faulty rows (161–960) and the delay to the first alarm. Beside
 * it, the classic PCA-T² baseline, fitted on d00_te's first 500 rows only. Used by `npm run tep`
 * and by the CI floor test.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { VectorDetector } from '../../src/analytics/detectors/multivariate.js';
import { normalQuantile } from '../../src/analytics/stats/normal.js';

export const TEP_DIR = process.env.TEP_DIR ?? '/work/shared/datasets/tep';
/** Rows 1..FAULT_ROW are normal in every fault run; the fault acts from the next row on. */
export const FAULT_ROW = 160;
const ROW_MS = 180_000;

export interface RunScore {
  name: string;
  /** Normal rows judged (after any warm-up) and how many of them alarmed. */
  normalRows: number;
  falseAlarms: number;
  /** Faulty rows and how many alarmed (0 for d00). */
  faultRows: number;
  detected: number;
  /** Rows after the fault began until the first alarm (1 = the first faulty row); undefined: never. */
  delay?: number;
}

export function tepFiles(dir = TEP_DIR): string[] {
  return Array.from({ length: 22 }, (_, i) => `d${String(i).padStart(2, '0')}_te.dat`).filter((f) => existsSync(join(dir, f)));
}

export function readTep(file: string, dir = TEP_DIR): Float64Array[] {
  return readFileSync(join(dir, file), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => Float64Array.from(l.trim().split(/\s+/), Number));
}

/** Scores one run from its per-row alarms; rows before `judgedFrom` (0-based) are not judged. */
export function scoreRun(name: string, alarms: boolean[], judgedFrom: number, normalOnly: boolean): RunScore {
  const s: RunScore = { name, normalRows: 0, falseAlarms: 0, faultRows: 0, detected: 0 };
  alarms.forEach((a, i) => {
    if (i < judgedFrom) return;
    if (normalOnly || i < FAULT_ROW) {
      s.normalRows++;
      if (a) s.falseAlarms++;
    } else {
      s.faultRows++;
      if (a) {
        s.detected++;
        s.delay ??= i - FAULT_ROW + 1;
      }
    }
  });
  return s;
}

/** Replays every run through a fresh detector; a row alarms when its score reaches `threshold`. */
export function replayTep(make: (p: number) => VectorDetector, threshold: number, dir = TEP_DIR): RunScore[] {
  return tepFiles(dir).map((file) => {
    const rows = readTep(file, dir);
    const d = make(rows[0].length);
    let judgedFrom = rows.length;
    const alarms = rows.map((r, i) => {
      d.processVector(r, i * ROW_MS);
      if (d.judging && judgedFrom === rows.length) judgedFrom = i;
      return d.lastScore >= threshold;
    });
    return scoreRun(file.slice(0, 3), alarms, judgedFrom, file.startsWith('d00'));
  });
}

/** The classic baseline: PCA on standardised d00 rows 1–500, components to 90 % of the variance, T² against a 99 % χ² limit. */
export function pcaT2Baseline(dir = TEP_DIR, train = 500): { scores: RunScore[]; components: number; limit: number } {
  const normal = readTep('d00_te.dat', dir).slice(0, train);
  const p = normal[0].length;
  const n = normal.length;
  const mean = new Float64Array(p);
  const sd = new Float64Array(p);
  for (const r of normal) for (let j = 0; j < p; j++) mean[j] += r[j] / n;
  for (const r of normal) for (let j = 0; j < p; j++) sd[j] += (r[j] - mean[j]) ** 2 / (n - 1);
  for (let j = 0; j < p; j++) sd[j] = Math.sqrt(sd[j]) || 1;
  const corr = new Float64Array(p * p);
  for (const r of normal) {
    for (let i = 0; i < p; i++) {
      const zi = (r[i] - mean[i]) / sd[i];
      for (let j = 0; j < p; j++) corr[i * p + j] += (zi * (r[j] - mean[j])) / sd[j] / (n - 1);
    }
  }
  const { values, vectors } = jacobiEigen(corr, p);
  const order = Array.from(values.keys()).sort((a, b) => values[b] - values[a]);
  const total = values.reduce((a, b) => a + b, 0);
  let a = 0;
  for (let acc = 0; a < p && acc < 0.9 * total; a++) acc += values[order[a]];
  const z = normalQuantile(0.99);
  const chi2 = a * (1 - 2 / (9 * a) + z * Math.sqrt(2 / (9 * a))) ** 3;
  const limit = ((n * n - 1) / (n * (n - a))) * chi2;
  const scores = tepFiles(dir).map((file) => {
    const rows = readTep(file, dir);
    const alarms = rows.map((r) => {
      let t2 = 0;
      for (let k = 0; k < a; k++) {
        const c = order[k];
        let t = 0;
        for (let j = 0; j < p; j++) t += ((r[j] - mean[j]) / sd[j]) * vectors[j * p + c];
        t2 += (t * t) / values[c];
      }
      return t2 > limit;
    });
    // d00's first rows trained the baseline: only its held-out rows count.
    return scoreRun(file.slice(0, 3), alarms, file.startsWith('d00') ? train : 0, file.startsWith('d00'));
  });
  return { scores, components: a, limit };
}

/** Eigenvalues and eigenvectors (columns) of a symmetric matrix, cyclic Jacobi. */
export function jacobiEigen(m: Float64Array, p: number): { values: number[]; vectors: Float64Array } {
  const a = Float64Array.from(m);
  const v = new Float64Array(p * p);
  for (let i = 0; i < p; i++) v[i * p + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let i = 0; i < p; i++) for (let j = i + 1; j < p; j++) off += a[i * p + j] ** 2;
    if (off < 1e-22) break;
    for (let i = 0; i < p; i++) {
      for (let j = i + 1; j < p; j++) {
        const aij = a[i * p + j];
        if (Math.abs(aij) < 1e-300) continue;
        const theta = (a[j * p + j] - a[i * p + i]) / (2 * aij);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < p; k++) {
          const aki = a[k * p + i];
          const akj = a[k * p + j];
          a[k * p + i] = c * aki - s * akj;
          a[k * p + j] = s * aki + c * akj;
        }
        for (let k = 0; k < p; k++) {
          const aik = a[i * p + k];
          const ajk = a[j * p + k];
          a[i * p + k] = c * aik - s * ajk;
          a[j * p + k] = s * aik + c * ajk;
        }
        for (let k = 0; k < p; k++) {
          const vki = v[k * p + i];
          const vkj = v[k * p + j];
          v[k * p + i] = c * vki - s * vkj;
          v[k * p + j] = s * vki + c * vkj;
        }
      }
    }
  }
  return { values: Array.from({ length: p }, (_, i) => a[i * p + i]), vectors: v };
}
