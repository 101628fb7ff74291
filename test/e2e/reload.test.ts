/**
 * SIGHUP reload with the compiled CLI (`npm run build` first): an edited file is applied without a
 * restart (a new driver appears, the broker keeps its clients and seq goes on); an invalid file is
 * one log line, counted, and changes nothing.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/gateway.js';
import { freePort, tempDir } from '../helpers/peers.js';

const BIN = new URL('../../src/cli/bin.js', import.meta.url).pathname;

describe('sluice run: SIGHUP reloads the config file', () => {
  const dir = tempDir('sluice-reload-');
  let child: ChildProcess | undefined;
  afterAll(async () => {
    if (child && child.exitCode === null) {
      const gone = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    }
    dir.cleanup();
  });

  it('applies an edited file, refuses an invalid one with one line, keeps running', async () => {
    const [mqttPort, httpPort] = [await freePort(), await freePort()];
    const file = join(dir.path, 'sluice.yaml');
    const base = `gateway: {id: gw-reload, dataDir: ${join(dir.path, 'data')}}
broker: {listeners: [{host: 127.0.0.1, port: ${mqttPort}}]}
http: {host: 127.0.0.1, port: ${httpPort}}
drivers:
  - {name: sim-a, type: simulator, interval: 100ms, sensors: [{topic: sim/a, base: 1}]}
`;
    writeFileSync(file, base);
    child = spawn('node', [BIN, 'run', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SLUICE_LOG_FORMAT: 'json' } });
    let log = '';
    child.stdout?.on('data', (d) => (log += d));
    child.stderr?.on('data', (d) => (log += d));
    const url = `http://127.0.0.1:${httpPort}`;
    type Status = { gateway: { startedAt: number }; drivers: { name: string }[] };
    const status = async () => (await (await fetch(`${url}/api/status`)).json()) as Status;
    const first = await waitFor(() => status().catch(() => undefined), 15_000, 'the gateway');

    writeFileSync(file, `${base}  - {name: sim-b, type: simulator, interval: 100ms, sensors: [{topic: sim/b, base: 2}]}\n`);
    child.kill('SIGHUP');
    const after = await waitFor(async () => {
      const s = await status();
      return s.drivers.some((d) => d.name === 'sim-b') ? s : undefined;
    }, 15_000, 'sim-b after the reload');
    expect(after.gateway.startedAt).toBe(first.gateway.startedAt);
    await waitFor(() => log.includes('config reloaded and healthy'), 35_000, 'the reload log line');

    writeFileSync(file, `${base}  - {name: sim-c, type: simulatr}\n`);
    child.kill('SIGHUP');
    await waitFor(() => log.includes('config reload invalid'), 10_000, 'the invalid reload log line');
    const line = log.split('\n').find((l) => l.includes('config reload invalid'))!;
    expect(line).toContain('the running config stays');
    expect(line).toMatch(/drivers\[1\]\.type/);
    const still = await status();
    expect(still.drivers.map((d) => d.name).sort()).toEqual(['sim-a', 'sim-b']);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain('sluice_config_reloads_total{outcome="applied"} 1');
    expect(metrics).toContain('sluice_config_reloads_total{outcome="invalid"} 1');
    expect(child.exitCode).toBeNull();
  });
});
