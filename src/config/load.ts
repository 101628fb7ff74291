/**
 * Loading a config: YAML or JSON text → validated config with defaults. Every problem is reported
 * as one `path: problem` line (all of them at once, so an operator fixes a file in one pass).
 */
import { readFile } from 'node:fs/promises';
import { type Document, isMap, LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { type Config, configSchema } from './schema.js';
import { substituteReferences } from './substitute.js';
import { describeIssue, knownKeysAt } from './issues.js';

export class ConfigError extends Error {
  constructor(
    readonly problems: string[],
    readonly source = 'config',
  ) {
    super(`${source} is invalid:\n${problems.join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Where a config path is in its YAML text (1-based line), when known. */
export type LineOf = (path: PropertyKey[], key?: string) => number | undefined;

/** Parses YAML (a superset of JSON) text; syntax errors become ConfigError lines with line numbers. */
export function parseConfigText(text: string, source = 'config'): unknown {
  return parseConfigDocument(text, source).value;
}

/** The parsed value and a way to find the line of any path in it. */
export function parseConfigDocument(text: string, source = 'config'): { value: unknown; lineOf: LineOf } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { uniqueKeys: true, lineCounter: lines });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map(
        (e) =>
          `${e.linePos ? `line ${e.linePos[0].line}` : '(file)'}: ${e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}`,
      ),
      source,
    );
  }
  return { value: doc.toJS() ?? {}, lineOf: (path, key) => lineIn(doc, lines, path, key) };
}

function lineIn(doc: Document, lines: LineCounter, path: PropertyKey[], key?: string): number | undefined {
  // The deepest node of the path that exists: a missing key is reported where its parent is.
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
    if (!node?.range) continue;
    if (key !== undefined && n === path.length && isMap(node)) {
      const pair = node.items.find((p) => (p.key as { value?: unknown } | null)?.value === key);
      const at = (pair?.key as { range?: [number, number, number] } | null)?.range;
      if (at) return lines.linePos(at[0]).line;
    }
    return lines.linePos(node.range[0]).line;
  }
  return undefined;
}

/** Validates a parsed config object and fills in defaults. */
export function validateConfig(raw: unknown, source = 'config', lineOf?: LineOf): Config {
  const result = configSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(formatIssues(result.error.issues, raw, lineOf), source);
  return result.data;
}

export async function loadConfigFile(file: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`], file);
  }
  // ${VAR}, ${VAR:-default} and ${file:/path} in a local config file (not in a fleet config.set,
  // which must not pick up whatever the gateway's environment holds).
  const substituted = substituteReferences(text);
  if (substituted.problems.length > 0) throw new ConfigError(substituted.problems, file);
  const { value, lineOf } = parseConfigDocument(substituted.text, file);
  return validateConfig(value, file, lineOf);
}

/** The config to run: `-c FILE`, else `$SLUICE_CONFIG`, else built-in defaults (contract). */
export async function resolveConfig(file?: string): Promise<{ config: Config; file?: string }> {
  const path = file ?? process.env.SLUICE_CONFIG;
  if (path) return { config: await loadConfigFile(path), file: path };
  return { config: validateConfig({}) };
}

export function formatIssues(issues: z.core.$ZodIssue[], raw?: unknown, lineOf?: LineOf): string[] {
  const lines: string[] = [];
  for (const issue of issues) {
    // A discriminated union whose discriminator matched nothing: say which values it accepts.
    if (issue.code === 'invalid_union' && 'errors' in issue && Array.isArray(issue.errors) && issue.errors.length) {
      const nested = (issue.errors as z.core.$ZodIssue[][]).flat();
      if (nested.length) {
        lines.push(...formatIssues(nested.map((n) => ({ ...n, path: [...issue.path, ...n.path] })), raw, lineOf));
        continue;
      }
    }
    const text = describeIssue(issue, () => knownKeysAt(configSchema, issue.path, raw));
    const key = issue.code === 'unrecognized_keys' ? issue.keys[0] : undefined;
    const line = lineOf?.(issue.path, key);
    lines.push(`${formatPath(issue.path)}: ${text}${line ? ` (line ${line})` : ''}`);
  }
  return [...new Set(lines)];
}

export function formatPath(path: PropertyKey[]): string {
  if (path.length === 0) return '(root)';
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}
