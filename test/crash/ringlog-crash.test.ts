/**
 * kill -9 at random moments while producers append and a reader commits (a child process using the
 * compiled ring log, dist/buffer; `npm run build` first, which test/setup.sh does). After every
 * kill the log is reopened and checked: every acknowledged append is present with the right
 * envelope, seq is never reused, and the reader's cursor did not go back. SLUICE_CRASH_CYCLES and
 * SLUICE_CRASH_SECONDS lengthen the run (`npm run test:crash`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { openRingLog } from '../../buffer/index.js';
import { tempDir } from '../helpers/peers.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
const CYCLES = Number(process.env.SLUICE_CRASH_CYCLES ?? 20);
const SECONDS = Number(process.env.SLUICE_CRASH_SECONDS ?? 60);

/** The child's ring log config (handed to it as JSON), for the reopen after each kill to match. */
const LOG_CONFIG = {
  maxBytes: 256 * 1024 * 1024,
  onFull: 'drop-oldest' as const,
  retention: 30 * 86_400_000,
  commitInterval: 2,
  commitEvents: 300,
  diskReserve: 0,
};

const dir = tempDir('sluice-crash-');
afterAll(() => dir.cleanup());

interface CycleLog {
  acked: Array<[number, number]>;
  committed: number;
  opened: number;
}

function runChild(killAfterMs: number): Promise<CycleLog> {
  return new Promise((resolveRun, reject) => {
    const child: ChildProcess = spawn(process.execPath, [join(here, 'ringlog-child.mjs'), dir.path, '6', JSON.stringify(LOG_CONFIG)], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const log: CycleLog = { acked: [], committed: 0, opened: -1 };
    let rest = '';
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop()!;
      for (const line of lines) {
        const [tag, a, b] = line.split(' ');
        if (tag === 'A') log.acked.push([Number(a), Number(b)]);
        else if (tag === 'C') log.committed = Math.max(log.committed, Number(a));
        else if (tag === 'O') {
          log.opened = Number(a);
          timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
        }
      }
    });
    child.stderr!.on('data', (d) => {
      stderr += d;
    });
    const guard = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('exit', (_code, signal) => {
      clearTimeout(timer);
      clearTimeout(guard);
      // A partial last line was never completely written: it does not count.
      if (signal !== 'SIGKILL' || log.opened < 0)
        reject(new Error(`child ended by itself (${signal}): ${stderr.slice(0, 500)}`));
      else resolveRun(log);
    });
  });
}

describe('ring log under kill -9', () => {
  it(
    `keeps every acknowledged event and never reuses seq (${CYCLES} cycles)`,
    async () => {
      expect(existsSync(join(root, 'dist', 'buffer', 'index.js')), 'dist/buffer is built (npm run build)').toBe(true);
      const deadline = Date.now() + SECONDS * 1000;
      let maxAcked = 0;
      let lastCommitted = 0;
      let totalAcked = 0;
      let cycles = 0;
      const ackedAll: Array<[number, number]> = [];
      while (cycles < CYCLES && (Date.now() < deadline || cycles < 20)) {
        const killAfter = 20 + Math.floor(Math.random() * 400);
        const c = await runChild(killAfter);
        cycles++;
        // seq never reused: what this run handed out starts above everything acknowledged before
        for (const [first] of c.acked) expect(first).toBeGreaterThan(maxAcked);
        for (const [first, last] of c.acked) {
          ackedAll.push([first, last]);
          totalAcked += last - first + 1;
          if (last > maxAcked) maxAcked = last;
        }
        if (c.committed > lastCommitted) lastCommitted = c.committed;

        const log = await openRingLog({ dir: dir.path, gatewayId: 'gw-crash', config: LOG_CONFIG });
        try {
          const s = log.stats();
          expect(s.lastSeq).toBeGreaterThanOrEqual(maxAcked);
          // The reader's cursor is where its last persisted commit put it, or beyond.
          const up = log.reader('up').stats();
          expect(up.committedSeq).toBeGreaterThanOrEqual(lastCommitted);
          // Every acknowledged event is present, once, with its envelope.
          const verify = log.reader(`verify-${cycles}`);
          const present = new Set<number>();
          for (;;) {
            const batch = await verify.next(5000, 1 << 30);
            if (batch.length === 0) break;
            for (const e of batch) {
              expect(present.has(e.seq)).toBe(false);
              present.add(e.seq);
              if (e.seq % 101 === 0)
                expect(JSON.parse(e.json)).toMatchObject({ id: `gw-crash:${e.seq}`, seq: e.seq, source: 'crash' });
            }
          }
          expect(present.size).toBe(s.events);
          let missing = 0;
          for (const [first, last] of ackedAll) for (let q = first; q <= last; q++) if (!present.has(q)) missing++;
          expect(missing).toBe(0);
          await log.dropReader(`verify-${cycles}`);
        } finally {
          await log.close();
        }
      }
      expect(cycles).toBeGreaterThanOrEqual(Math.min(CYCLES, 20));
      expect(totalAcked).toBeGreaterThan(cycles * 10);
      console.log(
        `crash test: ${cycles} kill -9 cycles, ${totalAcked} acknowledged events, all present; reader cursor at ${lastCommitted}`,
      );
    },
    Math.max(SECONDS, 60) * 1000 + 60_000,
  );
});
