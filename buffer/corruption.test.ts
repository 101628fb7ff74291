/**
 * Damage on disk never blocks start-up: a chunk whose CRC fails, LevelDB files flipped or
 * truncated, a database that will not open. What is bad is quarantined and counted, the rest is
 * served, and seq never goes back.
 */
import { existsSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { describe, expect, it } from 'vitest';
import type { RingLogConfig as BufferConfig } from './schema.js';
import { tempDir } from '../test/helpers/peers.js';
import { openRingLog, type RingLog } from './index.js';
import { cleanupsAfterEach } from '../test/helpers/cleanups.js';

const cleanups = cleanupsAfterEach();

const cfg: BufferConfig = {
  maxBytes: 1 << 30,
  onFull: 'drop-oldest',
  retention: 30 * 86_400_000,
  commitInterval: 2,
  commitEvents: 100,
  diskReserve: 0,
};

async function open(dir: string): Promise<RingLog> {
  const log = await openRingLog({ dir, gatewayId: 'gw-c', config: cfg });
  cleanups.push(() => log.close());
  return log;
}

/** A log with `chunks` chunks of 100 events (seqs 1..100*chunks), closed. */
async function filled(chunks: number): Promise<string> {
  const d = tempDir('sluice-corrupt-');
  cleanups.push(d.cleanup);
  const log = await openRingLog({ dir: d.path, gatewayId: 'gw-c', config: cfg });
  for (let c = 0; c < chunks; c++) {
    await log.append(
      Array.from({ length: 100 }, (_, i) => ({
        source: 't',
        topic: `s/${i}`,
        payload: { v: c * 100 + i, pad: 'x'.repeat(200) },
      })),
    );
  }
  await log.close();
  return d.path;
}

async function readAll(log: RingLog): Promise<number[]> {
  const r = log.reader('check');
  const seqs: number[] = [];
  for (;;) {
    const b = await r.next(1000, 1 << 30);
    if (!b.length) break;
    seqs.push(...b.map((e) => e.seq));
  }
  return seqs;
}

const settle = () => new Promise((r) => setTimeout(r, 50));

describe('ring log: corruption', () => {
  it('a chunk whose CRC fails is skipped, quarantined (raw bytes kept) and counted; the rest is served', async () => {
    const dir = await filled(5);
    const db = new ClassicLevel<Buffer, Buffer>(join(dir, 'ringlog'), {
      keyEncoding: 'buffer',
      valueEncoding: 'buffer',
    });
    await db.open();
    const [[key, value]] = await db
      .iterator({ gte: Buffer.from([0x10, 0]), limit: 3 })
      .all()
      .then((all) => [all[2]]);
    value[value.length - 10] ^= 0xff;
    await db.put(key, value);
    await db.close();

    const log = await open(dir);
    const seqs = await readAll(log);
    expect(seqs).toHaveLength(400);
    expect(seqs.includes(250)).toBe(false);
    expect(seqs.includes(301)).toBe(true);
    await settle();
    await log.append([{ source: 't', topic: 'x', payload: 1 }]);
    const s = log.stats();
    expect(s.quarantined).toBe(100);
    expect(s.events).toBe(401);
    expect(readdirSync(join(dir, 'ringlog-quarantine'))).toEqual(['chunk-0-300.bin']);
    expect(log.reader('check').stats().skipped).toBe(100);
  });

  it('bytes flipped inside a LevelDB table file: start-up succeeds and readable events are served', async () => {
    const dir = await filled(20);
    // Reopen once so LevelDB turns its write-ahead log into a table file, then damage that file.
    await (await openRingLog({ dir, gatewayId: 'gw-c', config: cfg })).close();
    const tables = readdirSync(join(dir, 'ringlog')).filter((f) => f.endsWith('.ldb'));
    expect(tables.length).toBeGreaterThan(0);
    const file = join(dir, 'ringlog', tables[0]);
    const bytes = readFileSync(file);
    for (let i = 1000; i < bytes.length / 2; i += 4096) bytes[i] ^= 0x5a;
    writeFileSync(file, bytes);

    const log = await open(dir);
    expect(log.healthy).toBe(true);
    const seqs = await readAll(log);
    expect(seqs.length).toBeGreaterThan(0);
    expect(seqs.length).toBeLessThanOrEqual(2000);
    // nothing served twice, in order
    expect(new Set(seqs).size).toBe(seqs.length);
    const next = await log.append([{ source: 't', topic: 'x', payload: 1 }]);
    expect(next.firstSeq).toBeGreaterThan(2000);
  });

  it('a truncated write-ahead log (power cut mid-write) opens with the commits before the tear', async () => {
    const dir = await filled(10);
    const logs = readdirSync(join(dir, 'ringlog')).filter((f) => f.endsWith('.log'));
    const wal = join(dir, 'ringlog', logs.sort().at(-1)!);
    truncateSync(wal, Math.floor(statSync(wal).size * 0.55));
    const log = await open(dir);
    const seqs = await readAll(log);
    expect(seqs.length).toBeGreaterThan(0);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
    expect(log.stats().events).toBe(seqs.length);
    // seq continues above everything handed out before (the lease), never reused
    const next = await log.append([{ source: 't', topic: 'x', payload: 1 }]);
    expect(next.firstSeq).toBeGreaterThan(seqs.at(-1)!);
  });

  it('a truncated table file: start-up succeeds, the damage is skipped', async () => {
    const dir = await filled(20);
    await (await openRingLog({ dir, gatewayId: 'gw-c', config: cfg })).close();
    const tables = readdirSync(join(dir, 'ringlog')).filter((f) => f.endsWith('.ldb'));
    const file = join(dir, 'ringlog', tables[0]);
    truncateSync(file, Math.floor(statSync(file).size / 3));
    const log = await open(dir);
    const seqs = await readAll(log);
    expect(new Set(seqs).size).toBe(seqs.length);
    expect((await log.append([{ source: 't', topic: 'x', payload: 1 }])).firstSeq).toBeGreaterThan(2000);
  });

  it('a database that will not open is repaired or moved aside; start-up succeeds and seq continues above the old one', async () => {
    const dir = await filled(3);
    const db = join(dir, 'ringlog');
    for (const f of readdirSync(db))
      if (f.startsWith('MANIFEST') || f === 'CURRENT') writeFileSync(join(db, f), 'garbage');
    const log = await open(dir);
    expect(log.healthy).toBe(true);
    const r = await log.append([{ source: 't', topic: 'x', payload: 1 }]);
    expect(r.firstSeq).toBeGreaterThan(300);
    const moved = existsSync(join(dir, 'ringlog-quarantine'));
    if (moved) expect(log.stats().quarantined).toBeGreaterThan(0);
  });

  it('garbage in place of the whole database directory: moved aside, fresh log', async () => {
    const dir = await filled(2);
    const db = join(dir, 'ringlog');
    for (const f of readdirSync(db)) writeFileSync(join(db, f), 'garbage');
    const log = await open(dir);
    expect(log.healthy).toBe(true);
    expect((await log.append([{ source: 't', topic: 'x', payload: 1 }])).firstSeq).toBeGreaterThan(200);
  });
});
