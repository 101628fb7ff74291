/**
 * The compiled gateway (`node src/cli/bin.js run -c FILE`, after `npm run build`) as a child
 * process, so its memory is measured alone and it can be stopped, frozen (SIGSTOP) and killed like
 * the real service. Ports are free ones, the data dir a temp dir; `ulimit -n` is raised in the
 * child (1,000 clients need more than the usual 1,024 descriptors).
 *
 * It runs with the Environment= of deploy/sluice.service (NODE_OPTIONS and the like), as deployed.
 *
 * RssAnon (anonymous resident memory: the heap and buffers, not mapped files) is sampled every
 * 200 ms while the child runs; `peakRssKb` is the highest sample. Log lines (pino JSON on stdout)
 * are kept, bounded, to assert what the gateway logged.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:net';
import { deployedEnvironment } from '../helpers/deployed-env.js';
import { freePort, tempDir } from '../helpers/peers.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const MAX_LOG_LINES = 20_000;

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

export interface ChildGateway {
  process: ChildProcess;
  pid: number;
  mqttPort: number;
  httpPort: number;
  url: string;
  dataDir: string;
  configFile: string;
  logs: LogLine[];
  /** RssAnon of the child now, in KiB (0 once it exited). */
  rssKb(): number;
  readonly peakRssKb: number;
  /** Forgets the peak so far (measure one phase alone). */
  resetPeak(): void;
  status(): Promise<GatewayStatus>;
  healthz(): Promise<number>;
  /** SIGTERM and wait for the exit (SIGKILL after `ms`); resolves the exit code. */
  stop(ms?: number): Promise<number | null>;
  signal(sig: NodeJS.Signals): void;
  cleanup(): void;
}

export interface GatewayStatus {
  ingest: { received: number; rejected: number; rejectedByReason: Record<string, number> };
  broker: { clients: number; listening: boolean };
  buffer: { events: number; bytes: number; evicted: number } | null;
  uplinks: {
    name: string;
    connected: boolean;
    pendingEvents: number;
    deliveredEvents: number;
    retried?: number;
    lastError?: string | null;
  }[];
  [k: string]: unknown;
}

function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...deployedEnvironment(ROOT), SLUICE_LOG_FORMAT: 'json' };
  delete env.SLUICE_LOG_LEVEL; // the config's level applies
  delete env.SLUICE_CONFIG;
  return env;
}

export function readRssAnonKb(pid: number): number {
  try {
    const m = /RssAnon:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

type ChildOptions = { nofile?: number; dataDir?: string; env?: Record<string, string> };

/**
 * Starts the gateway with `config` merged over: id `gw-faults`, a temp data dir, loopback broker
 * and HTTP on free ports. Keys in `config` replace the defaults' top-level sections except
 * `broker`, `gateway` and `http`, which are merged. A port found free can be taken before the
 * child binds it (the kernel also hands ports of that range to outgoing connections): then it
 * starts again on other ports, up to three times.
 */
export async function startChildGateway(config: Record<string, unknown> = {}, opts: ChildOptions = {}): Promise<ChildGateway> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startChildGatewayOnce(config, opts);
    } catch (err) {
      if (attempt >= 3 || !/already in use/.test((err as Error).message)) throw err;
    }
  }
}

async function startChildGatewayOnce(config: Record<string, unknown>, opts: ChildOptions): Promise<ChildGateway> {
  if (!existsSync(join(ROOT, 'dist/src/cli/main.js')))
    throw new Error('the gateway is not built: run `npm run build` first');
  const mqttPort = await freePort();
  const httpPort = await freePort();
  const dir = opts.dataDir ? { path: opts.dataDir, cleanup() {} } : tempDir('sluice-faults-');
  const { broker, gateway, http, ...rest } = config as {
    broker?: Record<string, unknown>;
    gateway?: Record<string, unknown>;
    http?: Record<string, unknown>;
  };
  const full = {
    gateway: { id: 'gw-faults', dataDir: join(dir.path, 'data'), logLevel: 'info', ...gateway },
    broker: { listeners: [{ host: '127.0.0.1', port: mqttPort }], ...broker },
    http: { host: '127.0.0.1', port: httpPort, ...http },
    buffer: { maxBytes: '256MiB', commitInterval: '2ms' },
    ...rest,
  };
  const configFile = join(dir.path, 'sluice.json');
  writeFileSync(configFile, JSON.stringify(full, null, 2));

  const nofile = opts.nofile ?? 8192;
  const child = spawn('bash', ['-c', `ulimit -n ${nofile}; exec node src/cli/bin.js run -c "$0"`, configFile], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...childEnv(), ...opts.env },
  });
  const logs: LogLine[] = [];
  let partial = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => {
    const lines = (partial + d.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line));
      } catch {
        logs.push({ level: 30, msg: line });
      }
      if (logs.length > MAX_LOG_LINES) logs.splice(0, logs.length - MAX_LOG_LINES);
    }
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  let peak = 0;
  const sampler = setInterval(() => {
    peak = Math.max(peak, readRssAnonKb(child.pid!));
  }, 200);
  exited.then(() => clearInterval(sampler));

  const url = `http://127.0.0.1:${httpPort}`;
  const gw: ChildGateway = {
    process: child,
    pid: child.pid!,
    mqttPort,
    httpPort,
    url,
    dataDir: full.gateway.dataDir,
    configFile,
    logs,
    rssKb: () => readRssAnonKb(child.pid!),
    get peakRssKb() {
      return peak;
    },
    resetPeak() {
      peak = readRssAnonKb(child.pid!);
    },
    async status() {
      const res = await fetch(`${url}/api/status`, { signal: AbortSignal.timeout(5000) });
      return (await res.json()) as GatewayStatus;
    },
    async healthz() {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5000) });
      await res.arrayBuffer();
      return res.status;
    },
    async stop(ms = 8000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), ms);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
    signal(sig) {
      child.kill(sig);
    },
    cleanup: dir.cleanup,
  };

  // Ready when /healthz says so (or the child died, with its stderr as the reason).
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) {
      dir.cleanup();
      throw new Error(`the gateway exited (${child.exitCode}): ${stderr.trim()}`);
    }
    try {
      // /healthz is up with the HTTP listener, which starts before the broker's: wait for those too.
      if ((await gw.healthz()) === 200 && (await brokerListening(full.broker as Parameters<typeof brokerListening>[0]))) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await gw.stop();
      dir.cleanup();
      throw new Error(`the gateway did not become healthy (and its broker listening) in 30 s: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return gw;
}

/** True when every TCP listener of the broker config accepts a connection (a disabled broker has none to wait for). */
async function brokerListening(broker: { enabled?: boolean; listeners?: Array<{ host?: string; port?: number }> }): Promise<boolean> {
  if (broker.enabled === false) return true;
  const accepts = (host: string, port: number) =>
    new Promise<boolean>((resolve) => {
      const s = connect(port, host, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
  for (const l of broker.listeners ?? []) if (typeof l.port === 'number' && !(await accepts(l.host ?? '127.0.0.1', l.port))) return false;
  return true;
}
