/**
 * The compiled CLI (`node src/cli/bin.js`, after `npm run build`): every command answers --help and
 * -h with its usage and exit 0, `version` prints package.json's version, and `passwd` on a real
 * pseudo-terminal prompts without echoing the password.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { HELP } from '../../src/cli/help.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const run = (...args: string[]) => spawnSync('node', ['src/cli/bin.js', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });

describe('sluice --help and version', () => {
  it('documents every command, with --help and -h anywhere before --', () => {
    for (const name of Object.keys(HELP)) {
      for (const flag of ['--help', '-h']) {
        const r = run(name, ...(name === 'buffer' ? ['export', flag] : [flag]));
        expect(r.status, `${name} ${flag}: ${r.stderr}`).toBe(0);
        expect(r.stdout).toMatch(new RegExp(`^usage: sluice ${name}`));
      }
    }
    expect(run('help', 'status').stdout).toContain('SLUICE_URL');
    expect(run('--help').stdout).toContain('sluice <command> --help');
  });

  it('prints the version', () => {
    const { version } = JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8'));
    expect(run('version').stdout.trim()).toBe(version);
    expect(run('--version').stdout.trim()).toBe(version);
  });

  it('passwd on a terminal prompts and does not echo', () => {
    const script = `
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execvp('node', ['node', 'src/cli/bin.js', 'passwd'])
out = b''
def read(t):
    global out
    end = time.time() + t
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                out += os.read(fd, 4096)
            except OSError:
                return
        if b'scrypt$' in out and out.endswith(b'\\n'):
            return
read(3)
os.write(fd, b'hunter2-secret\\r')
read(10)
sys.stdout.write(out.decode())
`;
    const r = spawnSync('python3', ['-c', script], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
    expect(r.stdout).toContain('Password: ');
    expect(r.stdout).toMatch(/scrypt\$16384\$8\$1\$/);
    expect(r.stdout).not.toContain('hunter2-secret');
  });
});
