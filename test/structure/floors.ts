/**
 * The floors of the house, and the check that every import points down (or sideways within a
 * floor's own folder). Checked by test/structure/floors.test.ts, which lists each upward import.
 *
 *   5 composition root  src/gateway.ts, src/wiring/, src/component-set.ts, src/cli/
 *   4 features          src/broker, src/analytics, src/rules, src/fleet, src/ops, src/sparkplug,
 *                       src/writes, src/intake, src/config
 *   3 plugins           buffer/, drivers/, uplink/
 *   2 auth              src/auth
 *   1 core              src/core (imports nothing of the project)
 *
 * Features may import each other (the broker uses rules' topic filters, ops reads analytics'
 * types) as long as no cycle forms; the structure-check tool watches cycles.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = normalize(join(dirname(fileURLToPath(import.meta.url)), '..', '..'));

const FLOORS: [prefix: string, floor: number][] = [
  ['src/core/', 1],
  ['src/auth/', 2],
  ['buffer/', 3],
  ['drivers/', 3],
  ['uplink/', 3],
  ['src/cli/', 5],
  ['src/gateway.ts', 5],
  ['src/component-set.ts', 5],
  ['src/wiring/', 5],
  ['src/', 4],
];

export const FLOOR_NAMES = ['', 'core', 'auth', 'plugins', 'features', 'composition root'];

export function floorOf(file: string): number | undefined {
  return FLOORS.find(([prefix]) => file.startsWith(prefix))?.[1];
}

const IMPORT = /(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;

function productionFiles(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules') productionFiles(path, out);
    } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') && !entry.name.endsWith('.d.ts')) {
      out.push(path);
    }
  }
  return out;
}

/** Every import of production code that points to a higher floor, as "from -> to". */
export function upwardImports(): string[] {
  const files = ['src', 'buffer', 'drivers', 'uplink'].flatMap((d) => productionFiles(d));
  const found: string[] = [];
  for (const file of files) {
    const from = floorOf(file);
    if (from === undefined) continue;
    for (const m of readFileSync(join(ROOT, file), 'utf8').matchAll(IMPORT)) {
      const target = relative(ROOT, join(ROOT, dirname(file), m[1] ?? m[2])).replace(/\.js$/, '.ts');
      const to = floorOf(target);
      if (to !== undefined && to > from) found.push(`${file} (${FLOOR_NAMES[from]}) -> ${target} (${FLOOR_NAMES[to]})`);
    }
  }
  return found;
}
