/**
 * A strict reader of the Prometheus text exposition format (0.0.4), for tests: every line is a
 * `# HELP`, a `# TYPE` or a sample; anything else (a blank line included) is an error naming its
 * line. Returns each metric family with its type and samples.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
export interface Family {
  name: string;
  type: string;
  help: string;
  samples: Sample[];
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const lines = text.endsWith('\n') ? text.slice(0, -1).split('\n') : text.split('\n');
  let current: Family | undefined;
  lines.forEach((line, i) => {
    const where = `line ${i + 1}`;
    if (line.startsWith('# HELP ')) {
      const [name, ...help] = line.slice(7).split(' ');
      current = families.get(name) ?? { name, type: 'untyped', help: help.join(' '), samples: [] };
      families.set(name, current);
      return;
    }
    if (line.startsWith('# TYPE ')) {
      const [name, type] = line.slice(7).split(' ');
      if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(type)) throw new Error(`${where}: unknown type "${type}"`);
      current = families.get(name) ?? { name, type, help: '', samples: [] };
      current.type = type;
      families.set(name, current);
      return;
    }
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`${where}: not a sample, HELP or TYPE line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const l of (m[3] ?? '').matchAll(LABEL)) labels[l[1]] = l[2];
    const value = m[4] === '+Inf' ? Infinity : m[4] === '-Inf' ? -Infinity : Number(m[4]);
    // Prometheus parses NaN case-insensitively (prom-client writes `Nan`).
    if (Number.isNaN(value) && m[4].toLowerCase() !== 'nan') throw new Error(`${where}: bad value ${m[4]}`);
    const base = m[1].replace(/_(bucket|sum|count)$/, '');
    const family = families.get(m[1]) ?? families.get(base);
    if (!family || (family !== current)) throw new Error(`${where}: sample ${m[1]} outside its family`);
    family.samples.push({ name: m[1], labels, value });
  });
  return families;
}
