/**
 * `sluice buffer export` through the compiled CLI: `| head` ends it quietly with exit 0, an
 * unwritable --out is one sentence and exit 1 (no stack trace), and --from after --to is a usage error.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRingLog } from '../../buffer/index.js';
import { bufferSchema } from '../../buffer/schema.js';
import { tempDir } from '../helpers/peers.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const dir = tempDir('sluice-export-');
const sluice = (args: string) => spawnSync('bash', ['-o', 'pipefail', '-c', `node src/cli/bin.js ${args}`], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });

describe('sluice buffer export', () => {
  beforeAll(async () => {
    const log = await openRingLog({ dir: dir.path, gatewayId: 'gw-export', config: bufferSchema.parse({}) });
    for (let b = 0; b < 20; b++) await log.append(Array.from({ length: 5000 }, (_, i) => ({ source: 'mqtt', topic: `t/${i % 10}`, payload: { v: b * 5000 + i, pad: 'x'.repeat(64) } })));
    await log.close();
  }, 60_000);
  afterAll(() => dir.cleanup());

  it('stops quietly with exit 0 when the reader goes away (| head)', () => {
    const r = sluice(`buffer export --data ${dir.path} | head -3`);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(3);
    expect(r.stderr).not.toMatch(/EPIPE|at /);
  });

  it('says in one sentence that it cannot write --out, with exit 1', () => {
    const r = sluice(`buffer export --data ${dir.path} --out ${join(dir.path, 'no/such/dir/out.ndjson')}`);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toMatch(/^sluice buffer: cannot write .*out\.ndjson \(ENOENT\)$/);
  });

  it('refuses --from after --to as a usage error', () => {
    const r = sluice(`buffer export --data ${dir.path} --from 40 --to 10`);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--from 40 is after --to 10/);
  });
});
