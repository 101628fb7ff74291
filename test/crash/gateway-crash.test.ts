/**
 * kill -9 of the whole gateway (`sluice run`, the compiled CLI: `npm run build` first) during
 * sustained QoS 1 ingest from a real MQTT client: every PUBACKed publish must be in the ring log
 * after the kill, seq is never reused across restarts, and duplicates are counted.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { openRingLog } from '../../buffer/index.js';
import { freePort, tempDir } from '../helpers/peers.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
const CYCLES = Number(process.env.SLUICE_GATEWAY_CRASH_CYCLES ?? 6);

const data = tempDir('sluice-gwcrash-');
afterAll(() => data.cleanup());

async function startGateway(mqttPort: number, httpPort: number): Promise<ChildProcess> {
  const file = join(data.path, 'sluice.json');
  writeFileSync(
    file,
    JSON.stringify({
      gateway: { id: 'gw-crash', dataDir: join(data.path, 'data'), logLevel: 'warn' },
      broker: { listeners: [{ host: '127.0.0.1', port: mqttPort }], allowAnonymous: true },
      http: { host: '127.0.0.1', port: httpPort },
    }),
  );
  const child = spawn(process.execPath, [join(root, 'src', 'cli', 'bin.js'), 'run', '-c', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => {
    stderr = (stderr + d).slice(-2000);
  });
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`gateway exited: ${stderr}`);
    const ok = await fetch(`http://127.0.0.1:${httpPort}/healthz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return child;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`gateway not healthy: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Publishes QoS 1 until the connection dies; returns the counters whose PUBACK arrived. */
async function publishUntilKilled(port: number, from: number, kill: () => void, killAfterMs: number): Promise<number[]> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, clientId: `crash-${from}`, connectTimeout: 5000 });
  const acked: number[] = [];
  let n = from;
  let alive = true;
  client.on('close', () => {
    alive = false;
  });
  client.on('error', () => {
    alive = false;
  });
  setTimeout(kill, killAfterMs);
  let inflight = 0;
  await new Promise<void>((done) => {
    const pump = () => {
      while (alive && inflight < 100) {
        const id = n++;
        inflight++;
        client.publish(`sensors/crash/${id % 5}`, JSON.stringify({ n: id, v: id * 0.5 }), { qos: 1 }, (err) => {
          inflight--;
          if (!err) acked.push(id);
          if (alive) setImmediate(pump);
          else if (inflight === 0) done();
        });
      }
      if (!alive && inflight === 0) done();
    };
    pump();
    const check = setInterval(() => {
      if (!alive) {
        clearInterval(check);
        setTimeout(done, 200);
      }
    }, 20);
  });
  client.end(true);
  return acked;
}

describe('gateway under kill -9', () => {
  it(`keeps every PUBACKed QoS 1 publish and never reuses seq (${CYCLES} cycles)`, { timeout: 150_000 }, async () => {
    expect(existsSync(join(root, 'dist', 'src', 'cli', 'main.js')), 'the CLI is built (npm run build)').toBe(true);
    const acked = new Set<number>();
    let next = 1;
    let maxSeq = 0;
    let duplicates = 0;
    for (let c = 0; c < CYCLES; c++) {
      const mqttPort = await freePort();
      const httpPort = await freePort();
      const gw = await startGateway(mqttPort, httpPort);
      const got = await publishUntilKilled(mqttPort, next, () => gw.kill('SIGKILL'), 150 + Math.floor(Math.random() * 600));
      await new Promise<void>((r) => (gw.exitCode !== null || gw.signalCode !== null ? r() : gw.once('exit', () => r())));
      next += 100_000;
      for (const id of got) acked.add(id);

      const log = await openRingLog({
        dir: join(data.path, 'data'),
        gatewayId: 'gw-crash',
        config: { maxBytes: 1 << 30, onFull: 'drop-oldest', retention: 30 * 86_400_000, commitInterval: 5, commitEvents: 2000, diskReserve: 0 },
      });
      try {
        const reader = log.reader(`verify-${c}`);
        const seen = new Map<number, number>();
        const seqs = new Set<number>();
        let newMax = maxSeq;
        for (;;) {
          const batch = await reader.next(5000, 1 << 30);
          if (batch.length === 0) break;
          for (const e of batch) {
            expect(seqs.has(e.seq)).toBe(false);
            seqs.add(e.seq);
            if (e.seq > newMax) newMax = e.seq;
            const ev = JSON.parse(e.json) as { payload: { n: number }; id: string };
            expect(ev.id).toBe(`gw-crash:${e.seq}`);
            seen.set(ev.payload.n, (seen.get(ev.payload.n) ?? 0) + 1);
          }
        }
        let missing = 0;
        for (const id of acked) if (!seen.has(id)) missing++;
        expect(missing).toBe(0);
        duplicates = [...seen.values()].filter((k) => k > 1).length;
        // events of this run got seqs above everything held before it
        expect(newMax).toBeGreaterThanOrEqual(maxSeq);
        maxSeq = newMax;
        await log.dropReader(`verify-${c}`);
      } finally {
        await log.close();
      }
    }
    expect(acked.size).toBeGreaterThan(CYCLES * 10);
    console.log(`gateway crash test: ${CYCLES} kill -9 cycles, ${acked.size} PUBACKed publishes all present, ${duplicates} duplicates`);
  });
});
