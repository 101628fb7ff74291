/**
 * Environment and secret-file references in config text, replaced before the text is parsed (as
 * Vector and Telegraf do): `${VAR}`, `${VAR:-default}` (the default when VAR is unset or empty) and
 * `${file:/path}` (the file's content without its trailing newline: a secret kept out of the config
 * file). `$${` writes a literal `${`. Comment lines are left alone, so a commented-out example does
 * not need its variables set. A value is inserted as text: quote the reference in YAML when the value
 * may contain `:` or `#`.
 */
import { readFileSync } from 'node:fs';

const REFERENCE = /\$(\$?)\{([^}\n]*)\}/g;
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The text with every reference replaced, or the problems found (one per reference, with its line). */
export function substituteReferences(
  text: string,
  env: NodeJS.ProcessEnv = process.env,
  readFile: (path: string) => string = (p) => readFileSync(p, 'utf8'),
): { text: string; problems: string[] } {
  const problems: string[] = [];
  const lines = text.split('\n').map((line, i) => {
    if (/^\s*#/.test(line)) return line;
    return line.replace(REFERENCE, (whole, escaped: string, inner: string) => {
      if (escaped) return whole.slice(1);
      const at = `line ${i + 1}`;
      if (inner.startsWith('file:')) {
        const path = inner.slice(5);
        try {
          return readFile(path).replace(/\r?\n$/, '');
        } catch (err) {
          problems.push(`${at}: \${file:${path}} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
          return '';
        }
      }
      const [name, fallback] = inner.includes(':-') ? [inner.slice(0, inner.indexOf(':-')), inner.slice(inner.indexOf(':-') + 2)] : [inner, undefined];
      if (!NAME.test(name)) {
        problems.push(`${at}: \${${inner}} is not a variable reference (use \${NAME}, \${NAME:-default} or \${file:/path}; $\${ writes a literal \${)`);
        return '';
      }
      const value = env[name];
      if (value !== undefined && value !== '') return value;
      if (fallback !== undefined) return fallback;
      problems.push(`${at}: \${${name}} is not set (set it, or give a default: \${${name}:-value})`);
      return '';
    });
  });
  return { text: lines.join('\n'), problems };
}
