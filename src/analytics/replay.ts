/**
 * Offline replay (`sluice detect`): runs a detector over a `timestamp,value` CSV and writes
 * `timestamp,value,anomaly_score`, one output row per input row, in order. A row whose value is not
 * a number keeps its place with score 0 and is counted, so the output always lines up with the input.
 */
import type { Detector } from './detectors/detector.js';

export interface ReplayResult {
  csv: string;
  rows: number;
  /** Rows whose value was not a finite number (scored 0). */
  badRows: number;
  /** First bad row (1-based line number), for the error sentence. */
  firstBadLine?: number;
  anomalies: number;
}

/** Epoch ms of a NAB-style `2014-04-10 07:15:00[.000]` (UTC), an ISO string or epoch seconds/ms. */
export function parseTimestamp(s: string): number {
  const t = s.trim();
  if (/^\d+(\.\d+)?$/.test(t)) {
    const n = Number(t);
    return n < 1e11 ? n * 1000 : n;
  }
  const iso = /^\d{4}-\d{2}-\d{2} \d/.test(t)
    ? `${t.replace(' ', 'T')}${/[zZ]|[+-]\d\d:?\d\d$/.test(t) ? '' : 'Z'}`
    : t;
  return Date.parse(iso);
}

export function replayCsv(text: string, detector: Detector): ReplayResult {
  const lines = text.split(/\r?\n/);
  let start = 0;
  while (start < lines.length && lines[start].trim() === '') start++;
  const header = (lines[start] ?? '').split(',').map((h) => unquote(h).toLowerCase());
  let ti = header.indexOf('timestamp');
  let vi = header.indexOf('value');
  const hasHeader = ti >= 0 || vi >= 0 || Number.isNaN(Number((lines[start] ?? '').split(',')[1]));
  if (ti < 0) ti = 0;
  if (vi < 0) vi = 1;
  const out: string[] = ['timestamp,value,anomaly_score'];
  let rows = 0;
  let badRows = 0;
  let firstBadLine: number | undefined;
  let anomalies = 0;
  let lastTs = 0;
  for (let i = hasHeader ? start + 1 : start; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === '') continue;
    const cols = line.split(',');
    const tsText = unquote(cols[ti] ?? '');
    const valueText = unquote(cols[vi] ?? '');
    const value = valueText === '' ? Number.NaN : Number(valueText);
    const parsedTs = parseTimestamp(tsText);
    const ts = Number.isFinite(parsedTs) ? parsedTs : lastTs;
    lastTs = ts;
    rows++;
    let score = 0;
    if (Number.isFinite(value)) {
      if (detector.process(value, ts)) anomalies++;
      score = detector.lastScore;
    } else {
      badRows++;
      firstBadLine ??= i + 1;
    }
    out.push(`${tsText},${valueText},${round(score)}`);
  }
  return { csv: `${out.join('\n')}\n`, rows, badRows, firstBadLine, anomalies };
}

/** A CSV field without its surrounding double quotes (spreadsheet exports quote every field). */
function unquote(field: string): string {
  const f = field.trim();
  return f.length >= 2 && f.startsWith('"') && f.endsWith('"') ? f.slice(1, -1).trim() : f;
}

function round(x: number): string {
  return x === 0 ? '0' : x === 1 ? '1' : x.toFixed(6);
}
