/**
 * Seq gaps stay small and explained: starts that end before their first commit do not move the
 * seq, a lost database continues at most one lease step above the last seq, and the step grows
 * only for a busy log.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RingLogConfig as BufferConfig } from './schema.js';
import { tempDir } from '../test/helpers/peers.js';
import { openRingLog } from './index.js';
import { LEASE_MAX_STEP, LEASE_MIN_STEP, SeqLease } from './lease.js';
import { cleanupsAfterEach } from '../test/helpers/cleanups.js';

const cleanups = cleanupsAfterEach();

const config: BufferConfig = { maxBytes: 1024 ** 3, onFull: 'drop-oldest', retention: 30 * 86_400_000, commitInterval: 2, commitEvents: 500, diskReserve: 0 };

function dir(): string {
  const d = tempDir('sluice-lease-');
  cleanups.push(d.cleanup);
  return d.path;
}

const leaseOf = (d: string) => Number(readFileSync(join(d, 'ringlog.lease'), 'utf8').trim());

describe('seq lease', () => {
  it('three starts that end before any commit leave the seq where it was', async () => {
    const d = dir();
    for (let i = 0; i < 3; i++) await (await openRingLog({ dir: d, gatewayId: 'g', config })).close();
    const log = await openRingLog({ dir: d, gatewayId: 'g', config });
    expect((await log.append([{ source: 's', topic: 't', payload: 1 }])).firstSeq).toBe(1);
    await log.close();
    expect(leaseOf(d)).toBeLessThanOrEqual(1 + LEASE_MIN_STEP);
  });

  it('a lost database continues above every seq it stored, at most one small step above', async () => {
    const d = dir();
    const log = await openRingLog({ dir: d, gatewayId: 'g', config });
    for (let i = 0; i < 3; i++) await log.append(Array.from({ length: 100 }, (_, j) => ({ source: 's', topic: 't', payload: i * 100 + j })));
    await log.close();
    rmSync(join(d, 'ringlog'), { recursive: true, force: true });
    const again = await openRingLog({ dir: d, gatewayId: 'g', config });
    const next = (await again.append([{ source: 's', topic: 't', payload: 1 }])).firstSeq;
    await again.close();
    expect(next).toBeGreaterThan(300);
    expect(next).toBeLessThanOrEqual(1 + LEASE_MIN_STEP);
    // and that start recorded where it is: the next start does not jump again
    const third = await openRingLog({ dir: d, gatewayId: 'g', config });
    expect(third.stats().lastSeq).toBe(next);
    await third.close();
  });

  it('the step doubles while renewals come quickly, up to a million, and shrinks when they are rare', async () => {
    const lease = new SeqLease(join(dir(), 'l'));
    await lease.read();
    await lease.renew(1, 0);
    expect(lease.value).toBe(1 + LEASE_MIN_STEP);
    await lease.renew(6_000, 1_000);
    expect(lease.step).toBe(2 * LEASE_MIN_STEP);
    expect(lease.value).toBe(6_000 + 2 * LEASE_MIN_STEP);
    for (let t = 2_000; t < 20_000; t += 1_000) await lease.renew(lease.value, t);
    expect(lease.step).toBe(LEASE_MAX_STEP);
    await lease.renew(lease.value, 10_000_000);
    expect(lease.step).toBe(LEASE_MAX_STEP / 2);
    expect(lease.due(lease.value - LEASE_MAX_STEP / 4 - 1)).toBe(false);
    expect(lease.due(lease.value - LEASE_MAX_STEP / 4)).toBe(true);
  });
});
