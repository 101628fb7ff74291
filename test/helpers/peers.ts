/**
 * Real peers for tests, each started on a free port and stopped after: Mosquitto, NATS with
 * JetStream, and the machine's RabbitMQ (one instance per machine; started if it is down). No
 * test depends on a service that happens to be running.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export function tempDir(prefix = 'sluice-test-'): { path: string; cleanup(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** Resolves once something accepts TCP connections on host:port, or rejects after `timeoutMs`. */
export async function waitForPort(port: number, host = '127.0.0.1', timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = new Socket();
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
      s.connect(port, host);
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface Peer {
  port: number;
  url: string;
  process: ChildProcess;
  stop(): Promise<void>;
  /** Stops the process but keeps its port and state, for start() to bring it back (outage tests). */
  kill(signal?: NodeJS.Signals): Promise<void>;
  start(): Promise<void>;
}

function managed(cmd: string, args: string[], port: number, url: string, cleanup: () => void): Promise<Peer> {
  const peer: Peer = {
    port,
    url,
    process: undefined as unknown as ChildProcess,
    async start() {
      peer.process = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      peer.process.stderr?.on('data', (d) => {
        stderr = (stderr + d).slice(-2000);
      });
      const exited = new Promise<never>((_, reject) =>
        peer.process.once('exit', (code) => reject(new Error(`${cmd} exited (${code}): ${stderr}`))),
      );
      await Promise.race([waitForPort(port), exited]);
    },
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      const p = peer.process;
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      const gone = new Promise((r) => p.once('exit', r));
      p.kill(signal);
      await gone;
    },
    async stop() {
      await peer.kill('SIGTERM');
      cleanup();
    },
  };
  return peer.start().then(() => peer);
}

/**
 * A private Mosquitto on a free port, anonymous clients allowed. With `persistent`, sessions and
 * queued QoS 1 messages survive a `kill('SIGTERM')` + `start()` (outage tests).
 */
export async function startMosquitto(extraConfig = '', persistent = false): Promise<Peer> {
  const port = await freePort();
  const dir = tempDir('sluice-mosquitto-');
  const conf = join(dir.path, 'mosquitto.conf');
  // Started as root, Mosquitto drops to the `mosquitto` user, which could not write its database
  // into our 0700 temp dir: `user` keeps it as whoever runs the tests, so persistence really works.
  const user = process.getuid?.() === 0 ? 'user root\n' : '';
  const persistence = persistent ? `${user}persistence true\npersistence_location ${dir.path}/` : 'persistence false';
  writeFileSync(
    conf,
    `listener ${port} 127.0.0.1\nallow_anonymous true\n${persistence}\nmax_queued_messages 100000\n${extraConfig}\n`,
  );
  return managed('mosquitto', ['-c', conf], port, `mqtt://127.0.0.1:${port}`, dir.cleanup);
}

/** The nats-server binary (Debian puts it in /usr/sbin or /usr/bin); throws when it is missing. */
export function natsServerBin(): string {
  const bin = ['/usr/sbin/nats-server', '/usr/bin/nats-server'].find((p) => {
    try {
      execFileSync(p, ['--version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  });
  if (!bin) throw new Error('nats-server is not installed (test/setup.sh installs it)');
  return bin;
}

/** A private NATS server with JetStream on a free port, its store in a temp directory; `extraArgs` for nats-server (e.g. `--user`). */
export async function startNats(extraArgs: string[] = []): Promise<Peer> {
  const port = await freePort();
  const dir = tempDir('sluice-nats-');
  const bin = natsServerBin();
  return managed(
    bin,
    ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir.path, ...extraArgs],
    port,
    `nats://127.0.0.1:${port}`,
    dir.cleanup,
  );
}

/** The machine's RabbitMQ on 127.0.0.1:5672 (guest/guest), started when it is not running. */
export async function ensureRabbitMQ(timeoutMs = 60_000): Promise<{ url: string }> {
  try {
    await waitForPort(5672, '127.0.0.1', 500);
  } catch {
    spawn('rabbitmq-server', ['-detached'], { stdio: 'ignore' }).unref();
    await waitForPort(5672, '127.0.0.1', timeoutMs);
  }
  return { url: 'amqp://guest:guest@127.0.0.1:5672' };
}

/**
 * The machine's RabbitMQ with AMQP 1.0 on its 0-9-1 port (RabbitMQ 3.x needs the rabbitmq_amqp1_0
 * plugin; enabling it is idempotent, but the Erlang CLI takes seconds, so it is asked only when the
 * port does not answer a 1.0 SASL header in kind).
 */
export async function ensureRabbitMQAmqp10(): Promise<{ url: string; port: number }> {
  const { url } = await ensureRabbitMQ();
  if (!(await speaksAmqp10(5672)))
    execFileSync('rabbitmq-plugins', ['enable', 'rabbitmq_amqp1_0'], { stdio: 'ignore', timeout: 60_000 });
  return { url, port: 5672 };
}

/** Whether the port answers an AMQP 1.0 SASL protocol header with the same header. */
function speaksAmqp10(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = new Socket();
    const done = (v: boolean) => {
      sock.destroy();
      resolve(v);
    };
    sock.setTimeout(2000, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write(Buffer.from([0x41, 0x4d, 0x51, 0x50, 3, 1, 0, 0])));
    sock.once('data', (d) => done(d.length >= 5 && d.subarray(0, 5).equals(Buffer.from([0x41, 0x4d, 0x51, 0x50, 3]))));
    sock.connect(port, '127.0.0.1');
  });
}

/** Runs mosquitto_pub asynchronously (a gateway under test may share this process's event loop). */
export function mosquittoPub(
  port: number,
  args: string[],
  input?: string,
): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), ...args], {
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('exit', (status) => {
      clearTimeout(timer);
      resolve({ status, stderr });
    });
    child.stdin.end(input ?? '');
  });
}
