/** `${VAR}`, `${VAR:-default}` and `${file:/path}` in a config file, through the compiled `sluice validate`. */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { tempDir } from '../helpers/peers.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const dir = tempDir('sluice-refs-');
afterAll(() => dir.cleanup());

it('validates a config whose values come from the environment and a secret file, and names what is missing', () => {
  const secret = join(dir.path, 'mqtt-password');
  writeFileSync(secret, 'from-a-file\n');
  const file = join(dir.path, 'sluice.yaml');
  writeFileSync(
    file,
    [
      'gateway: {id: "${GW_ID}"}',
      'uplinks:',
      '  - name: cloud',
      '    type: mqtt',
      '    url: "mqtt://${CLOUD_HOST:-127.0.0.1}:1883"',
      '    username: gw',
      `    password: "\${file:${secret}}"`,
    ].join('\n'),
  );
  const validate = (env: Record<string, string>) =>
    spawnSync('node', ['src/cli/bin.js', 'validate', '-c', file], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 20_000 });
  const ok = validate({ GW_ID: 'plant-7' });
  expect(ok.status, ok.stderr).toBe(0);
  const missing = validate({ GW_ID: '' });
  expect(missing.status).toBe(1);
  expect(missing.stderr + missing.stdout).toContain('line 1: ${GW_ID} is not set');

  // The effective config shows the substituted values, defaults filled in, and the secret redacted.
  const effective = spawnSync('node', ['src/cli/bin.js', 'config', '--effective', '-c', file], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, GW_ID: 'plant-7' } });
  expect(effective.status, effective.stderr).toBe(0);
  expect(effective.stdout).toContain('id: plant-7');
  expect(effective.stdout).toContain('url: mqtt://127.0.0.1:1883');
  expect(effective.stdout).toContain('password: (redacted)');
  expect(effective.stdout).not.toContain('from-a-file');
  const defaults = spawnSync('node', ['src/cli/bin.js', 'config', '--print-defaults'], { cwd: ROOT, encoding: 'utf8' });
  expect(defaults.status).toBe(0);
  expect(defaults.stdout).toMatch(/commitEvents: 2000/);
});
