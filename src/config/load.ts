/**
 * Loading a config: YAML or JSON text → validated config with defaults. Every problem is reported
 * as one `path: problem` line (all of them at once, so an operator fixes a file in one pass).
 */
import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { type Config, configSchema } from './schema.js';
import { substituteReferences } from './substitute.js';

export class ConfigError extends Error {
  constructor(
    readonly problems: string[],
    readonly source = 'config',
  ) {
    super(`${source} is invalid:\n${problems.join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Parses YAML (a superset of JSON) text; syntax errors become ConfigError lines with line numbers. */
export function parseConfigText(text: string, source = 'config'): unknown {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map(
        (e) =>
          `${e.linePos ? `line ${e.linePos[0].line}` : '(file)'}: ${e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}`,
      ),
      source,
    );
  }
  return doc.toJS() ?? {};
}

/** Validates a parsed config object and fills in defaults. */
export function validateConfig(raw: unknown, source = 'config'): Config {
  const result = configSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(formatIssues(result.error.issues), source);
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
  return validateConfig(parseConfigText(substituted.text, file), file);
}

/** The config to run: `-c FILE`, else `$SLUICE_CONFIG`, else built-in defaults (contract). */
export async function resolveConfig(file?: string): Promise<{ config: Config; file?: string }> {
  const path = file ?? process.env.SLUICE_CONFIG;
  if (path) return { config: await loadConfigFile(path), file: path };
  return { config: validateConfig({}) };
}

export function formatIssues(issues: z.core.$ZodIssue[]): string[] {
  const lines: string[] = [];
  for (const issue of issues) {
    // A discriminated union whose discriminator matched nothing: say which values it accepts.
    if (issue.code === 'invalid_union' && 'errors' in issue && Array.isArray(issue.errors) && issue.errors.length) {
      const nested = (issue.errors as z.core.$ZodIssue[][]).flat();
      if (nested.length) {
        lines.push(...formatIssues(nested.map((n) => ({ ...n, path: [...issue.path, ...n.path] }))));
        continue;
      }
    }
    lines.push(`${formatPath(issue.path)}: ${describe(issue)}`);
  }
  return [...new Set(lines)];
}

function describe(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys')
    return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  if (issue.code === 'invalid_value' && 'values' in issue) {
    return `must be one of ${(issue.values as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
  }
  if (issue.code === 'invalid_union' && 'note' in issue && issue.note === 'No matching discriminator') {
    return 'unknown type';
  }
  return issue.message.replace(/^Invalid input: /, '');
}

export function formatPath(path: PropertyKey[]): string {
  if (path.length === 0) return '(root)';
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}
