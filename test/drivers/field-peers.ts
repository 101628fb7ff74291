/**
 * Real field peers for the driver tests and benchmark: the pymodbus slave in modbus-server.py
 * (Debian's python3-pymodbus under /usr/bin/python3, not a pyenv python) over TCP or RTU, and
 * virtual serial cables made by socat (`pty,raw,echo=0` pairs). Each can be killed and started
 * again to show a device or cable going away and coming back.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../helpers/peers.js';
import { until } from '../helpers/until.js';

const here = dirname(fileURLToPath(import.meta.url));
// Compiled to dist/test/drivers for the benchmark: the script stays in the source tree.
const script =
  [join(here, 'modbus-server.py'), join(here, '../../../test/drivers/modbus-server.py')].find((p) => existsSync(p)) ??
  '';

export interface Restartable {
  kill(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

async function waitExit(p: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise((r) => p.once('exit', r));
  p.kill(signal);
  await gone;
}

export interface ModbusPeer extends Restartable {
  port: number;
}

function spawnUntilReady(args: string[], timeoutMs = 15_000): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const p = spawn('/usr/bin/python3', [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`modbus-server.py ${args.join(' ')} not ready after ${timeoutMs} ms: ${err}`));
    }, timeoutMs);
    p.stderr?.on('data', (d) => {
      err = (err + d).slice(-2000);
    });
    p.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) {
        clearTimeout(timer);
        resolve(p);
      }
    });
    p.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`modbus-server.py exited (${code}): ${err}`));
    });
  });
}

/** A pymodbus TCP slave on a free port serving the given unit ids. */
export async function startModbusTcp(units = [1]): Promise<ModbusPeer> {
  const port = await freePort();
  let proc: ChildProcess | undefined;
  const peer: ModbusPeer = {
    port,
    async start() {
      proc = await spawnUntilReady(['tcp', String(port), '--units', units.join(',')]);
    },
    kill: () => waitExit(proc),
    stop: () => waitExit(proc),
  };
  await peer.start();
  return peer;
}

/** A pymodbus RTU slave on one end of a serial line. */
export async function startModbusRtu(path: string, baud: number, units: number[]): Promise<Restartable> {
  let proc: ChildProcess | undefined;
  const peer: Restartable = {
    async start() {
      proc = await spawnUntilReady(['rtu', path, '--baud', String(baud), '--units', units.join(',')]);
    },
    kill: () => waitExit(proc),
    stop: () => waitExit(proc),
  };
  await peer.start();
  return peer;
}

/** A virtual serial cable: two pty ends linked at `a` and `b`. Killing it is an unplug. */
export async function startSerialPair(a: string, b: string): Promise<Restartable> {
  let proc: ChildProcess | undefined;
  const peer: Restartable = {
    async start() {
      proc = spawn('socat', [`pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: 'ignore' });
      const deadline = Date.now() + 5000;
      while (!(existsSync(a) && existsSync(b))) {
        if (Date.now() > deadline) throw new Error(`socat made no ${a} and ${b} within 5 s`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    kill: () => waitExit(proc),
    stop: () => waitExit(proc, 'SIGTERM'),
  };
  await peer.start();
  return peer;
}

/** Polls until a truthy value (test/helpers/until.ts), 10 s by default. */
export const eventually = <T>(check: Parameters<typeof until<T>>[0], timeoutMs = 10_000, what = 'condition') => until(check, timeoutMs, what, 25);
