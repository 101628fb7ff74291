/**
 * Config problems as an operator reads them: `path: problem (line N)`, every problem at once.
 * "missing" rather than "expected array, received undefined"; an enum lists its values; an unknown
 * key names the nearest known one ("did you mean"); a YAML file's line is given for each problem.
 */
import type { z } from 'zod';

type Def = {
  type: string;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  innerType?: z.ZodType;
  in?: z.ZodType;
  options?: z.ZodType[];
  getter?: () => z.ZodType;
};
const defOf = (s: z.ZodType) => (s as unknown as { _zod: { def: Def } })._zod.def;

/** The keys an object schema at `path` knows, following the raw value through arrays and unions. */
export function knownKeysAt(schema: z.ZodType, path: PropertyKey[], raw: unknown): string[] {
  let s: z.ZodType | undefined = schema;
  let value = raw;
  for (let i = 0; s && i <= path.length; ) {
    const def = defOf(s);
    if (def.type === 'object') {
      if (i === path.length) return Object.keys(def.shape ?? {});
      s = def.shape?.[String(path[i])];
    } else if (def.type === 'array') {
      if (i === path.length) return [];
      s = def.element;
    } else if (def.type === 'union') {
      // The option whose literal fields (a `type` discriminator) match the raw value, else the first object.
      const options: z.ZodType[] = def.options ?? [];
      s = options.find((o) => matchesLiterals(o, value)) ?? options.find((o) => defOf(o).type === 'object');
      continue;
    } else if (def.type === 'pipe') {
      s = def.in;
      continue;
    } else if (def.type === 'lazy') {
      s = def.getter?.();
      continue;
    } else if (def.innerType) {
      s = def.innerType;
      continue;
    } else return [];
    value = value && typeof value === 'object' ? (value as Record<PropertyKey, unknown>)[path[i] as string] : undefined;
    i++;
  }
  return [];
}

function matchesLiterals(option: z.ZodType, value: unknown): boolean {
  const def = defOf(option);
  if (def.type !== 'object' || !value || typeof value !== 'object') return false;
  const literal = def.shape?.type && (defOf(def.shape.type) as { values?: unknown[] }).values;
  return Array.isArray(literal) && literal.includes((value as Record<string, unknown>).type);
}

/** The known key nearest to `key` when it is close enough to be a typo. */
export function nearestKey(key: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const k of known) {
    const d = distance(key.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best;
}

function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

/** One problem in words, without its path. */
export function describeIssue(issue: z.core.$ZodIssue, known: () => string[]): string {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys
      .map((k) => {
        const near = nearestKey(k, known());
        return `unknown key "${k}"${near ? ` (did you mean "${near}"?)` : ''}`;
      })
      .join('; ');
  }
  if (issue.code === 'invalid_value' && 'values' in issue) {
    return `must be one of ${(issue.values as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
  }
  if (issue.code === 'invalid_type' && /received undefined$/.test(issue.message)) return `missing (${issue.expected} expected)`;
  if (issue.code === 'invalid_union' && 'note' in issue && issue.note === 'No matching discriminator') {
    return 'unknown type';
  }
  return issue.message.replace(/^Invalid input: /, '');
}
