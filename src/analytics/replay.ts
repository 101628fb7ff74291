/**
 * Offline replay (`sluice detect`, `npm run nab`): runs a detector over a CSV of a `timestamp`
 * column and one or more value columns, one output row per input row, in order.
 *
 * - One value column: `timestamp,value,anomaly_score` through a single-series detector (`auto`).
 * - Several: `timestamp,anomaly_score` (plus `contribution_<column>` per column on request)
 *   through a vector detector (`multivariate`).
 * The CSV is read by csv-parse: quoted fields, a `,`, `;` or tab separator (guessed from the header
 * line), and with `;` or tab decimal commas (`3,14`). What it cannot read (a broken quote, a row of
 * the wrong width, a value that is not a number, a timestamp that is not a time) is refused with
 * its line number: a result computed from misread numbers would look right and be wrong. An empty
 * cell is a missing reading: the row keeps its place, scored 0 (one column) or with the column's
 * last value held (several).
 */
import { parse } from 'csv-parse';
import { parse as parseSync } from 'csv-parse/sync';
import type { Detector } from './detectors/detector.js';
import type { VectorDetector } from './detectors/multivariate.js';

/** A CSV the replay cannot read: the sentence names the line. */
export class CsvError extends Error {}

export interface ReplayResult {
  rows: number;
  /** Rows with an empty value cell (scored 0, or judged with the last value held). */
  emptyCells: number;
  anomalies: number;
}

export interface ReplayOptions {
  /** Builds the detector once the header is known: `columns` are the value columns' names. */
  single: () => Detector;
  vector: (columns: string[]) => VectorDetector;
  /** Several columns: also write each column's share of the deviation. */
  contributions?: boolean;
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

/** The separator of a CSV, from its first line: the most frequent of `,` `;` tab outside quotes. */
export function guessDelimiter(firstLine: string): string {
  const counts: Record<string, number> = { ',': 0, ';': 0, '\t': 0 };
  let quoted = false;
  for (const ch of firstLine) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && ch in counts) counts[ch]++;
  }
  const [best, n] = Object.entries(counts).sort((a, b) => b[1] - a[1])[0];
  return n > 0 ? best : ',';
}

/** Scores rows one at a time; the same logic for a whole text (NAB) and a stream (the CLI). */
class RowScorer {
  readonly result: ReplayResult = { rows: 0, emptyCells: 0, anomalies: 0 };
  private ti = 0;
  private valueCols: number[] = [];
  private names: string[] = [];
  private single?: Detector;
  private vector?: VectorDetector;
  private held: Float64Array = new Float64Array(0);
  private heldOk: Uint8Array = new Uint8Array(0);
  private x: Float64Array = new Float64Array(0);
  private width = 0;
  private started = false;

  constructor(
    private readonly opts: ReplayOptions,
    private readonly decimalComma: boolean,
  ) {}

  /** Takes one record (its first line number in the file); returns the output lines it makes. */
  take(cols: string[], line: number): string | undefined {
    if (!this.started) {
      this.started = true;
      return this.header(cols, line);
    }
    return this.row(cols, line);
  }

  private header(cols: string[], line: number): string | undefined {
    const lower = cols.map((c) => c.trim().toLowerCase());
    const looksNumeric = cols.length >= 2 && cols.slice(1).every((c) => c.trim() !== '' && Number.isFinite(this.number(c)));
    this.width = cols.length;
    if (cols.length < 2) throw new CsvError(`line ${line}: expected a timestamp column and at least one value column`);
    if (looksNumeric && !lower.includes('timestamp')) {
      // No header: timestamp, value.
      this.setup(['timestamp', ...cols.slice(1).map((_, i) => (cols.length === 2 ? 'value' : `value${i + 1}`))]);
      const out = this.headerLine();
      const first = this.row(cols, line);
      return `${out}\n${first}`;
    }
    this.setup(cols.map((c) => c.trim()));
    return this.headerLine();
  }

  private setup(names: string[]): void {
    const lower = names.map((n) => n.toLowerCase());
    this.ti = Math.max(0, lower.indexOf('timestamp'));
    this.valueCols = names.map((_, i) => i).filter((i) => i !== this.ti);
    this.names = this.valueCols.map((i) => names[i]);
    if (this.valueCols.length === 1) {
      this.single = this.opts.single();
    } else {
      this.vector = this.opts.vector(this.names);
      const p = this.valueCols.length;
      this.held = new Float64Array(p);
      this.heldOk = new Uint8Array(p);
      this.x = new Float64Array(p);
    }
  }

  private headerLine(): string {
    if (this.single) return 'timestamp,value,anomaly_score';
    const extra = this.opts.contributions ? this.names.map((n) => `,${quote(`contribution_${n}`)}`).join('') : '';
    return `timestamp,anomaly_score${extra}`;
  }

  private row(cols: string[], line: number): string {
    if (cols.length !== this.width) {
      throw new CsvError(`line ${line}: ${cols.length} fields where the header has ${this.width}`);
    }
    const tsText = cols[this.ti].trim();
    const ts = parseTimestamp(tsText);
    if (!Number.isFinite(ts)) {
      throw new CsvError(`line ${line}: "${tsText}" is not a timestamp (use ISO 8601, e.g. 2024-01-31 12:00:00, or epoch seconds)`);
    }
    this.result.rows++;
    if (this.single) {
      const text = cols[this.valueCols[0]].trim();
      let score = 0;
      if (text === '') this.result.emptyCells++;
      else {
        if (this.single.process(this.value(text, this.names[0], line), ts)) this.result.anomalies++;
        score = this.single.lastScore;
      }
      return `${quote(tsText)},${text === '' ? '' : this.value(text, this.names[0], line)},${round(score)}`;
    }
    const v = this.vector!;
    let complete = true;
    this.valueCols.forEach((c, i) => {
      const text = cols[c].trim();
      if (text === '') {
        this.result.emptyCells++;
        if (!this.heldOk[i]) complete = false;
        this.x[i] = this.held[i];
        return;
      }
      this.x[i] = this.held[i] = this.value(text, this.names[i], line);
      this.heldOk[i] = 1;
    });
    let score = 0;
    let contributions = '';
    if (complete) {
      if (v.processVector(this.x, ts)) this.result.anomalies++;
      score = v.lastScore;
      if (this.opts.contributions) contributions = Array.from(v.contributions, (c) => `,${round(c)}`).join('');
    } else if (this.opts.contributions) {
      contributions = ',0'.repeat(this.names.length);
    }
    return `${quote(tsText)},${round(score)}${contributions}`;
  }

  private number(text: string): number {
    const t = text.trim();
    if (t === '') return Number.NaN;
    return Number(this.decimalComma && /^[+-]?\d*,\d+$/.test(t) ? t.replace(',', '.') : t);
  }

  private value(text: string, column: string, line: number): number {
    const x = this.number(text);
    if (!Number.isFinite(x)) throw new CsvError(`line ${line}: "${text}" in column ${column} is not a number`);
    return x;
  }
}

function csvOptions(firstLine: string) {
  const delimiter = guessDelimiter(firstLine);
  return {
    delimiter,
    decimalComma: delimiter !== ',',
    // The width of each row is checked by the scorer (its sentence names the header).
    parse: { delimiter, bom: true, skip_empty_lines: true, relax_column_count: true, info: true } as const,
  };
}

/** Why csv-parse refused the text, as one sentence with the line; other errors pass through. */
function csvFailure(err: unknown): unknown {
  const e = err as { message?: string; lines?: number; code?: unknown };
  if (typeof e?.code !== 'string' || !e.code.startsWith('CSV_')) return err;
  const why: Record<string, string> = {
    CSV_QUOTE_NOT_CLOSED: 'a quote opened here is never closed',
    CSV_INVALID_CLOSING_QUOTE: 'a quoted field goes on after its closing quote',
  };
  return new CsvError(`line ${e.lines ?? '?'}: ${why[e.code] ?? e.message}`);
}

/** Replays a whole CSV text (NAB's files, tests); throws CsvError for what it cannot read. */
export function replayText(text: string, opts: ReplayOptions): ReplayResult & { csv: string } {
  const o = csvOptions(text.slice(0, text.search(/\r?\n|$/)));
  const scorer = new RowScorer(opts, o.decimalComma);
  const out: string[] = [];
  let records: { record: string[]; info: { lines: number } }[];
  try {
    records = parseSync(text, o.parse) as unknown as { record: string[]; info: { lines: number } }[];
  } catch (err) {
    throw csvFailure(err);
  }
  for (const r of records) {
    const line = scorer.take(r.record, r.info.lines);
    if (line !== undefined) out.push(line);
  }
  return { ...scorer.result, csv: `${out.join('\n')}\n` };
}

/** The single-series replay of a `timestamp,value` text (NAB). */
export function replayCsv(text: string, detector: Detector): ReplayResult & { csv: string } {
  return replayText(text, {
    single: () => detector,
    vector: () => {
      throw new CsvError('expected one value column');
    },
  });
}

/**
 * Replays a CSV stream into `write` (one call per output line, awaited: back-pressure), reading
 * the first line to guess the separator. Bounded memory whatever the file's size.
 */
export async function replayStream(
  input: AsyncIterable<Buffer | string>,
  write: (line: string) => Promise<void> | void,
  opts: ReplayOptions,
): Promise<ReplayResult> {
  let head = '';
  const iterator = input[Symbol.asyncIterator]();
  // The first line decides the separator; it is read before the parser is configured.
  const chunks: string[] = [];
  for (;;) {
    const n = await iterator.next();
    if (n.done) break;
    const s = typeof n.value === 'string' ? n.value : n.value.toString('utf8');
    chunks.push(s);
    head += s;
    if (/\r?\n/.test(head) || head.length > 65_536) break;
  }
  const o = csvOptions(head.replace(/^\uFEFF/, '').split(/\r?\n/)[0]);
  const csv = parse(o.parse);
  const scorer = new RowScorer(opts, o.decimalComma);
  const feed = (async () => {
    for (const c of chunks) if (!csv.write(c)) await new Promise((r) => csv.once('drain', r));
    for (;;) {
      const n = await iterator.next();
      if (n.done) break;
      if (!csv.write(n.value)) await new Promise((r) => csv.once('drain', r));
    }
    csv.end();
  })();
  try {
    for await (const r of csv as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      const line = scorer.take(r.record, r.info.lines);
      if (line !== undefined) await write(line);
    }
    await feed;
  } catch (err) {
    csv.destroy();
    feed.catch(() => {});
    throw csvFailure(err);
  }
  return scorer.result;
}

/** A field for the output CSV, quoted when it holds a comma, a quote or a line break. */
function quote(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

function round(x: number): string {
  return x === 0 ? '0' : x === 1 ? '1' : x.toFixed(6);
}
