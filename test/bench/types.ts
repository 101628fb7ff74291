/**
 * The benchmark case-module contract (test/bench/README.md). `npm run bench` compiles test/bench
 * with tsconfig.bench.json and loads every module in test/bench/cases/; each default-exports one
 * BenchCase (or an array of them). A case measures a figure and its baseline side by side, in the
 * same run, and returns them as results; it never asserts (targets are reported, not enforced).
 */
export interface BenchResult {
  /** Stable dotted name, e.g. `ingest.qos1.gateway`. */
  name: string;
  value: number;
  /** `msg/s`, `ms`, `MB`, `ratio`, `bytes/byte`, ... */
  unit: string;
  /** The figure this one is compared with, measured in the same run (e.g. bare aedes msg/s). */
  baseline?: number;
  baselineName?: string;
  /** value / baseline, where that is the figure the target is about. */
  ratio?: number;
  /** The target in words, e.g. `>= 0.6x bare aedes`. */
  target?: string;
  /** Whether the target is met (omitted when there is no target). */
  pass?: boolean;
  /** Anything else worth keeping (parameters, percentiles). */
  [extra: string]: unknown;
}

export interface BenchContext {
  /** `--quick`: smaller sizes for a smoke run (CI, development); figures are then indicative only. */
  quick: boolean;
  /** A fresh temporary directory, removed after the case. */
  tempDir(prefix?: string): string;
  /** Progress line on stderr (stdout is reserved for the summary). */
  log(message: string): void;
  /** The repository root (for spawning `node src/cli/bin.js`, tools, etc.). */
  root: string;
}

export interface BenchCase {
  /** Short id, used by `--only NAME` (substring match). */
  name: string;
  /** One line on what it measures. */
  description: string;
  /** Soft time budget; the harness reports the case as failed past it (default 180 s). */
  timeoutMs?: number;
  run(ctx: BenchContext): Promise<BenchResult[]>;
}
