/**
 * The `sluice` command as a user runs it (the compiled CLI, `npm run build` first, which `npm test`
 * does): validate, run with a taken port, and a clean SIGTERM shutdown that keeps seq increasing.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/gateway.js';
import { freePort, tempDir } from '../helpers/peers.js';

const BIN = new URL('../../src/cli/bin.js', import.meta.url).pathname;
const dir = tempDir('sluice-cli-');
afterAll(() => dir.cleanup());

function sluice(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync('node', [BIN, ...args], {
    encoding: 'utf8',
    timeout: 20_000,
    env: { ...process.env, SLUICE_LOG_FORMAT: 'json', ...env },
  });
}

function writeConfig(name: string, text: string): string {
  const file = join(dir.path, name);
  writeFileSync(file, text);
  return file;
}

describe('sluice validate', () => {
  it('accepts the shipped example', () => {
    const r = sluice(['validate', '-c', new URL('../../deploy/sluice.example.yaml', import.meta.url).pathname]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('exits 1 listing every problem as path: problem', () => {
    const file = writeConfig(
      'bad.yaml',
      'gateway: {id: gw-01, colour: red}\nbuffer: {maxBytes: lots}\nuplinks: [{name: c, type: mqtt, url: "ftp://x"}]\n',
    );
    const r = sluice(['validate', '-c', file]);
    expect(r.status).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toEqual(
      expect.arrayContaining([
        'gateway: unknown key "colour" (line 1)',
        expect.stringMatching(/^buffer\.maxBytes: /),
        expect.stringMatching(/^uplinks\[0\]\.url: /),
      ]),
    );
  });

  it('exits 2 on a usage error', () => {
    expect(sluice(['validate']).status).toBe(2);
    expect(sluice(['no-such-command']).status).toBe(2);
  });
});

describe('sluice run', () => {
  let blocker: Server | undefined;
  let child: ChildProcess | undefined;
  afterAll(() => {
    blocker?.close();
    child?.kill('SIGKILL');
  });

  it('names the port and the config key when the broker port is taken', async () => {
    const port = await freePort();
    blocker = createServer().listen(port, '127.0.0.1');
    await new Promise((r) => blocker!.once('listening', r));
    const file = writeConfig(
      'taken.yaml',
      `gateway: {dataDir: ${join(dir.path, 'd1')}}\nbroker: {listeners: [{host: 127.0.0.1, port: ${port}}]}\nhttp: {port: ${await freePort()}}\n`,
    );
    const r = sluice(['run', '-c', file]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`port ${port}`);
    expect(r.stderr).toContain('broker.listeners[].port');
  });

  it('stops cleanly on SIGTERM within 5 s and continues seq on the next start', async () => {
    const mqttPort = await freePort();
    const httpPort = await freePort();
    const file = writeConfig(
      'run.yaml',
      `gateway: {id: cli-gw, dataDir: ${join(dir.path, 'd2')}}\nbroker: {listeners: [{host: 127.0.0.1, port: ${mqttPort}}]}\nhttp: {port: ${httpPort}}\n`,
    );
    const publish = (v: string) =>
      spawnSync('mosquitto_pub', ['-p', String(mqttPort), '-q', '1', '-t', 'sensors/x', '-m', v], { encoding: 'utf8' });
    const lastSeq = async () =>
      (await (await fetch(`http://127.0.0.1:${httpPort}/api/status`)).json()).buffer.lastSeq as number;

    const runOnce = async () => {
      child = spawn('node', [BIN, 'run', '-c', file], {
        stdio: 'ignore',
        env: { ...process.env, SLUICE_LOG_FORMAT: 'json' },
      });
      await waitFor(
        async () => (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).ok,
        15_000,
        'the gateway to be healthy',
      );
      expect(publish('1').status).toBe(0);
      expect(publish('2').status).toBe(0);
      const seq = await lastSeq();
      const started = Date.now();
      const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(Date.now() - started).toBeLessThan(5000);
      return seq;
    };
    const first = await runOnce();
    const second = await runOnce();
    expect(second).toBeGreaterThan(first);
  });
});
