/**
 * The last-known-good file under SIGKILL: a child process rewrites it as fast as it can and is
 * killed at a random moment, many times. After every kill the gateway's loader finds a complete
 * config whose version is at least the last one the child reported as written (durable once
 * `writeLastKnownGood` resolved), and never an empty or torn file. (A kill leaves the page cache
 * intact, so this checks the write order and the rename, not the fsyncs a power cut needs.)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { generateKeyPair } from '../../src/fleet/keys.js';
import { loadEffectiveConfig, writeLastKnownGood } from '../../src/fleet/lkg.js';
import { tempDir } from '../helpers/peers.js';

const dir = tempDir('sluice-lkg-crash-');
afterAll(() => dir.cleanup());

function startWriter(publicKey: string): { child: ChildProcess; lastWritten: () => number; started: Promise<void> } {
  const child = spawn(process.execPath, [join(import.meta.dirname, 'lkg-writer.child.mjs'), dir.path, publicKey], {
    cwd: join(import.meta.dirname, '..', '..'),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let last = 0;
  let buf = '';
  let resolveStarted: () => void;
  const started = new Promise<void>((r) => (resolveStarted = r));
  child.stdout!.on('data', (d) => {
    buf += d;
    const lines = buf.split('\n');
    buf = lines.pop()!;
    for (const l of lines) last = Number(l);
    if (last > 0) resolveStarted();
  });
  return { child, lastWritten: () => last, started };
}

describe('last-known-good config under SIGKILL', () => {
  it('always loads a complete config at least as new as the last acknowledged write', async () => {
    const { publicKey } = generateKeyPair();
    const file = validateConfig({
      gateway: { id: 'gw-crash', dataDir: dir.path },
      uplinks: [{ name: 'cloud', type: 'mqtt', url: 'mqtt://127.0.0.1:1' }],
      fleet: { uplink: 'cloud', trustedKeys: [{ keyId: 'k', publicKey }] },
    });
    const warnings: string[] = [];
    const logger = { warn: (_o: unknown, m: string) => warnings.push(m), info: () => {} } as never;
    let highest = 0;
    for (let round = 0; round < 5; round++) {
      const w = startWriter(publicKey);
      await w.started;
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 150));
      const exited = new Promise((r) => w.child.once('exit', r));
      w.child.kill('SIGKILL');
      await exited;
      const eff = await loadEffectiveConfig(file, dir.path, logger);
      expect(eff.source).toBe('last-known-good');
      expect(eff.version).toBeGreaterThanOrEqual(w.lastWritten());
      expect(eff.config.drivers).toHaveLength(40);
      highest = Math.max(highest, eff.version);
    }
    expect(warnings.filter((w) => w.includes('ignored'))).toEqual([]);
    expect(highest).toBeGreaterThan(1);
    // The next write clears the temp files that interrupted writes left behind.
    const next = { ...file, fleet: { ...file.fleet!, configVersion: highest + 1 } };
    await writeLastKnownGood(dir.path, { version: highest + 1, config: next as never, validated: next });
    expect(readdirSync(join(dir.path, 'fleet'))).toEqual(['last-known-good.json']);
    expect((await loadEffectiveConfig(file, dir.path, logger)).version).toBe(highest + 1);
  }, 60_000);
});
