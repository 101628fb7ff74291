/**
 * scrypt off the libuv thread pool: password checks run on one dedicated worker thread, with a
 * bounded queue in front.
 *
 * Why: `crypto.scrypt` runs on libuv's pool (4 threads), which classic-level shares for every ring
 * log write and fsync. A login flood filled the pool with 16 MiB scrypt jobs and held QoS 1
 * acknowledgements behind them. On its own thread scrypt only competes for CPU, and at most
 * `maxQueued` checks wait for it; past that `verify` refuses at once (`ScryptBusyError`) instead
 * of queueing without bound.
 *
 * The worker starts on first use and is unref'd (it never keeps the process alive). A worker that
 * dies fails its pending checks (as errors, never as "password right") and is replaced on the next use.
 */
import { Worker } from 'node:worker_threads';

export class ScryptBusyError extends Error {
  readonly code = 'SCRYPT_BUSY';
}

export interface ScryptJob {
  secret: string;
  salt: Buffer;
  n: number;
  r: number;
  p: number;
  keylen: number;
}

// Plain JS evaluated in the worker, so it runs the same from sources (vitest) and from dist/.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { scryptSync } = require('node:crypto');
parentPort.on('message', ({ id, secret, salt, n, r, p, keylen }) => {
  try {
    const key = scryptSync(secret, Buffer.from(salt), keylen, { N: n, r, p, maxmem: 256 * n * r + 1024 * 1024 });
    parentPort.postMessage({ id, key });
  } catch (err) {
    parentPort.postMessage({ id, error: String(err && err.message || err) });
  }
});
`;

interface Pending {
  resolve(key: Buffer): void;
  reject(err: Error): void;
}

export class ScryptPool {
  private worker?: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(private readonly maxQueued = 32) {}

  /** Checks waiting for or running on the worker. */
  get queued(): number {
    return this.pending.size;
  }

  derive(job: ScryptJob): Promise<Buffer> {
    if (this.pending.size >= this.maxQueued) {
      return Promise.reject(new ScryptBusyError('too many password checks are waiting; try again shortly'));
    }
    const worker = this.ensureWorker();
    const id = this.nextId++;
    return new Promise<Buffer>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) worker.ref(); // keeps the answer's message from being lost at exit
      worker.postMessage({ id, ...job });
    });
  }

  /** Stops the worker; pending checks fail. */
  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    this.failAll(new Error('password checks stopped'));
    await w?.terminate();
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true, name: 'sluice-scrypt' });
    worker.unref();
    worker.on('message', (m: { id: number; key?: Uint8Array; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) worker.unref();
      if (m.key) p.resolve(Buffer.from(m.key.buffer, m.key.byteOffset, m.key.byteLength));
      else p.reject(new Error(m.error ?? 'scrypt failed'));
    });
    const gone = (err: Error) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.failAll(err);
    };
    worker.on('error', gone);
    worker.on('exit', (code) => gone(new Error(`the password worker exited (${code})`)));
    this.worker = worker;
    return worker;
  }

  private failAll(err: Error): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(err);
  }
}
