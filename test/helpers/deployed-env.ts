import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The `Environment=` of the systemd unit (deploy/sluice.service), e.g. NODE_OPTIONS: the gateway is
 * measured as it is deployed (the V8 heap limit and malloc settings change its RSS). The unit's
 * config path is not taken (callers pass their own with -c).
 */
export function deployedEnvironment(root: string): Record<string, string> {
  const env: Record<string, string> = {};
  try {
    const unit = readFileSync(join(root, 'deploy/sluice.service'), 'utf8');
    for (const m of unit.matchAll(/^Environment=([A-Za-z_][A-Za-z0-9_]*)=(.*)$/gm)) {
      if (m[1] !== 'SLUICE_CONFIG') env[m[1]] = m[2].trim().replace(/^"(.*)"$/, '$1');
    }
  } catch {
    // no unit file: plain defaults
  }
  return env;
}
