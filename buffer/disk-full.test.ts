/**
 * Disk full, on a real small filesystem (a tmpfs mounted for the test; the suite runs as root).
 * The log keeps buffer.diskReserve free with each policy, refuses or evicts with a count, never
 * loses an acknowledged event it still holds, and carries on when space comes back.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RingLogConfig as BufferConfig } from './schema.js';
import { tempDir } from '../test/helpers/peers.js';
import { BufferFullError, openRingLog, type RingLog } from './index.js';

const MiB = 1024 * 1024;
const root = tempDir('sluice-diskfull-');
const mounts: string[] = [];

function mountTmpfs(name: string, sizeMiB: number): string {
  const dir = join(root.path, name);
  mkdirSync(dir);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m`, 'tmpfs', dir]);
  mounts.push(dir);
  return dir;
}

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('the disk-full tests mount a tmpfs and need root (CI runs as root)');
});

afterAll(() => {
  for (const m of mounts) {
    try {
      execFileSync('umount', ['-l', m]);
    } catch {
      // already gone
    }
  }
  root.cleanup();
});

const cfg = (over: Partial<BufferConfig>): BufferConfig => ({
  maxBytes: 1024 * MiB,
  onFull: 'drop-oldest',
  retention: 30 * 86_400_000,
  commitInterval: 2,
  commitEvents: 500,
  diskReserve: 4 * MiB,
  ...over,
});

const free = (dir: string) => {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
};

/** Appends 200-event batches of ~600-byte events until `totalMiB` were offered; returns acked seqs. */
async function fill(log: RingLog, totalMiB: number, dir: string, minFree: { v: number }) {
  const acked: number[] = [];
  let refused = 0;
  let failed = 0;
  const batches = Math.ceil((totalMiB * MiB) / (200 * 650));
  for (let b = 0; b < batches; b++) {
    // random text: LevelDB compresses its tables, and a disk must fill with what does not compress
    const events = Array.from({ length: 200 }, (_, i) => ({ source: 't', topic: 'd/f', payload: { b, i, pad: randomBytes(250).toString('hex') } }));
    try {
      const r = await log.append(events);
      for (let s = r.firstSeq; s <= r.lastSeq; s++) acked.push(s);
    } catch (err) {
      if (err instanceof BufferFullError) refused++;
      else failed++;
      await new Promise((r) => setTimeout(r, 20));
    }
    minFree.v = Math.min(minFree.v, free(dir));
  }
  return { acked, refused, failed };
}

/** Every seq the log holds, read by a throwaway reader that is dropped after (it must not hold events back). */
async function readSeqs(log: RingLog): Promise<Set<number>> {
  const name = `check-${Math.random()}`;
  const r = log.reader(name);
  const seen = new Set<number>();
  for (;;) {
    const b = await r.next(5000, 1 << 30);
    if (!b.length) break;
    for (const e of b) seen.add(e.seq);
  }
  await log.dropReader(name);
  return seen;
}

describe('ring log: disk full', () => {
  it('drop-oldest keeps the reserve free by evicting (counted as "disk"), and keeps the newest events', async () => {
    const dir = mountTmpfs('drop', 32);
    const log = await openRingLog({ dir, gatewayId: 'gw-d', config: cfg({}) });
    const minFree = { v: Number.POSITIVE_INFINITY };
    const { acked, failed } = await fill(log, 90, dir, minFree);
    const s = log.stats();
    expect(s.evicted).toBeGreaterThan(0);
    expect(s.evictedByReason.disk).toBeGreaterThan(0);
    // never below half the reserve (where appends are refused whatever the policy)
    expect(minFree.v).toBeGreaterThanOrEqual(2 * MiB);
    expect(log.healthy).toBe(true);
    // nearly everything offered was accepted (evictions make room), and what is held is readable
    expect(failed).toBeLessThan(acked.length / 200 / 10);
    // The once-a-second disk check may evict more while this reads: everything still held was read.
    const held = await readSeqs(log);
    const end = log.stats();
    expect(held.size).toBeGreaterThanOrEqual(end.events);
    const newest = acked.slice(-200);
    expect(newest.every((q) => held.has(q))).toBe(true);
    await log.close();
    const again = await openRingLog({ dir, gatewayId: 'gw-d', config: cfg({}) });
    expect(again.stats().events).toBe(end.events);
    expect((await again.append([{ source: 't', topic: 'x', payload: 1 }])).firstSeq).toBeGreaterThan(acked.at(-1)!);
    await again.close();
  });

  it('reject refuses new events once the reserve is reached, loses nothing it acknowledged, accepts again when space returns', async () => {
    const dir = mountTmpfs('reject', 32);
    const log = await openRingLog({ dir, gatewayId: 'gw-d', config: cfg({ onFull: 'reject' }) });
    const minFree = { v: Number.POSITIVE_INFINITY };
    const { acked, refused } = await fill(log, 60, dir, minFree);
    expect(refused).toBeGreaterThan(0);
    expect(log.stats().refused).toBeGreaterThan(0);
    expect(log.stats().evicted).toBe(0);
    expect(minFree.v).toBeGreaterThan(0);
    const held = await readSeqs(log);
    expect(acked.every((q) => held.has(q))).toBe(true);
    // An uplink delivers everything: delivered events may go, and appends are accepted again.
    const up = log.reader('up');
    for (;;) {
      const b = await up.next(5000, 1 << 30);
      if (!b.length) break;
      await up.commit(b.at(-1)!.seq);
    }
    let ok = false;
    for (let i = 0; i < 400 && !ok; i++) {
      try {
        await log.append([{ source: 't', topic: 'x', payload: 'after' }]);
        ok = true;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    expect(ok).toBe(true);
    await log.close();
  }, 90_000);

  it('a disk filled by someone else: writes fail with a clear error, nothing acknowledged is lost, it recovers when space returns', async () => {
    const dir = mountTmpfs('other', 24);
    const log = await openRingLog({ dir, gatewayId: 'gw-d', config: cfg({ diskReserve: 0 }) });
    const first = await log.append(Array.from({ length: 100 }, (_, i) => ({ source: 't', topic: 'a', payload: i })));
    // Someone else takes all the space.
    const filler = join(dir, 'filler');
    try {
      writeFileSync(filler, Buffer.alloc(free(dir)));
    } catch {
      // ENOSPC at the very end: the disk is full, which is the point
    }
    let error: Error | undefined;
    for (let i = 0; i < 50 && !error; i++) {
      try {
        await log.append(Array.from({ length: 500 }, (_, j) => ({ source: 't', topic: 'b', payload: { i, j, pad: 'y'.repeat(400) } })));
      } catch (err) {
        error = err as Error;
      }
    }
    expect(error?.message).toMatch(/ring log (write failed|cannot write|is behind)|No space|disk/i);
    expect(log.stats().refused).toBeGreaterThan(0);
    rmSync(filler);
    let back = false;
    for (let i = 0; i < 80 && !back; i++) {
      await new Promise((r) => setTimeout(r, 100));
      try {
        await log.append([{ source: 't', topic: 'c', payload: 'back' }]);
        back = true;
      } catch {
        // still recovering
      }
    }
    expect(back).toBe(true);
    expect(log.healthy).toBe(true);
    const held = await readSeqs(log);
    for (let q = first.firstSeq; q <= first.lastSeq; q++) expect(held.has(q)).toBe(true);
    await log.close();
  });
});
