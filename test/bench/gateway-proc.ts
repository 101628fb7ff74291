/** Spawning the gateway (`sluice run`) and the bare aedes baseline as child processes for benchmarks. */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deployedEnvironment } from '../helpers/deployed-env.js';

const here = dirname(fileURLToPath(import.meta.url));

export interface Child {
  proc: ChildProcess;
  pid: number;
  stop(): Promise<void>;
}

function stopper(proc: ChildProcess): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
      const kill = setTimeout(() => proc.kill('SIGKILL'), 8000);
      proc.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      proc.kill('SIGTERM');
    });
}

export async function startBareAedes(port: number): Promise<Child> {
  const proc = spawn(process.execPath, [join(here, 'aedes-bare.js'), String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    proc.stdout!.on('data', (d) => {
      if (String(d).includes('ready')) resolve();
    });
    proc.once('exit', (code) => reject(new Error(`bare aedes exited with ${code}`)));
  });
  return { proc, pid: proc.pid!, stop: stopper(proc) };
}

export interface GatewayChild extends Child {
  /** ms from spawn to the first 200 from /healthz. */
  readyMs: number;
  httpPort: number;
  mqttPort: number;
}

/** Starts `sluice run` with a generated config and the unit's environment; resolves once /healthz is green. */
export async function startGateway(opts: {
  root: string;
  dataDir: string;
  mqttPort: number;
  httpPort: number;
  configDir: string;
  maxBytes?: number;
  id?: string;
  /** The config's `uplinks` (none by default). */
  uplinks?: unknown[];
}): Promise<GatewayChild> {
  const file = join(opts.configDir, `sluice-${opts.mqttPort}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      gateway: { id: opts.id ?? 'gw-bench', dataDir: opts.dataDir, logLevel: 'warn' },
      broker: { listeners: [{ host: '127.0.0.1', port: opts.mqttPort }], allowAnonymous: true },
      buffer: { maxBytes: opts.maxBytes ?? 8 * 1024 ** 3 },
      http: { host: '127.0.0.1', port: opts.httpPort },
      uplinks: opts.uplinks ?? [],
    }),
  );
  const t0 = performance.now();
  const proc = spawn(process.execPath, [join(opts.root, 'src', 'cli', 'bin.js'), 'run', '-c', file], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...deployedEnvironment(opts.root), SLUICE_LOG_FORMAT: 'json' },
  });
  let stderr = '';
  proc.stderr!.on('data', (d) => {
    stderr = (stderr + d).slice(-4000);
  });
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`the gateway exited with ${proc.exitCode}: ${stderr}`);
    try {
      const res = await fetch(`http://127.0.0.1:${opts.httpPort}/healthz`);
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`the gateway did not become healthy: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  const readyMs = performance.now() - t0;
  return { proc, pid: proc.pid!, stop: stopper(proc), readyMs, httpPort: opts.httpPort, mqttPort: opts.mqttPort };
}

export async function apiStatus(httpPort: number): Promise<Record<string, unknown>> {
  const res = await fetch(`http://127.0.0.1:${httpPort}/api/status`);
  return (await res.json()) as Record<string, unknown>;
}
