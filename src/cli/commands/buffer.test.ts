import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openRingLog } from '../../../buffer/index.js';
import { captureOutput } from '../../../test/helpers/cli.js';
import { tempDir } from '../../../test/helpers/peers.js';
import { UsageError } from '../args.js';
import buffer from './buffer.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  vi.restoreAllMocks();
  for (const c of cleanups.splice(0)) c();
});

const LOG_CONFIG = { maxBytes: 1 << 30, onFull: 'drop-oldest' as const, retention: 86_400_000, commitInterval: 2, commitEvents: 100, diskReserve: 0 };

const run = (args: string[]) => captureOutput(() => buffer(args));

async function filled(): Promise<string> {
  const d = tempDir('sluice-cli-buffer-');
  cleanups.push(d.cleanup);
  const log = await openRingLog({
    dir: d.path,
    gatewayId: 'gw-cli',
    config: LOG_CONFIG,
  });
  await log.append(Array.from({ length: 30 }, (_, i) => ({ source: 'mqtt', topic: `t/${i}`, payload: i })));
  await log.append([{ source: 'detector', topic: 'alert', payload: { score: 0.9 }, kind: 'anomaly' }]);
  await log.append([{ source: 'mqtt', topic: 't/last', payload: 'x' }]);
  const r = log.reader('cloud');
  for (let i = 0; i < 2; i++) {
    const b = await r.next(5, 1e6);
    await r.commit(b.at(-1)!.seq);
  }
  await log.close();
  return d.path;
}

describe('sluice buffer', () => {
  it('stats prints the counters and each reader', async () => {
    const dir = await filled();
    const { code, out } = await run(['stats', '--data', dir, '--json']);
    expect(code).toBe(0);
    const s = JSON.parse(out);
    expect(s).toMatchObject({ events: 32, firstSeq: 1, lastSeq: 32, evicted: 0 });
    // the anomaly went out first (priority lane), then seqs 1..5
    expect(s.readers).toEqual([{ name: 'cloud', committedSeq: 5, pendingEvents: 26, skipped: 0 }]);
    const text = await run(['stats', '--data', dir]);
    expect(text.out).toMatch(/events\s+32/);
    expect(text.out).toMatch(/cloud: committed 5, pending 26/);
  });

  it('export writes every event as NDJSON in seq order (stdout or --out), with --from/--to', async () => {
    const dir = await filled();
    const { code, out } = await run(['export', '--data', dir]);
    expect(code).toBe(0);
    const lines = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((e) => e.seq)).toEqual(Array.from({ length: 32 }, (_, i) => i + 1));
    expect(lines[30]).toMatchObject({ id: 'gw-cli:31', kind: 'anomaly', topic: 'alert', payload: { score: 0.9 } });
    const file = join(dir, 'out.ndjson');
    const res = await run(['export', '--data', dir, '--out', file, '--from', '10', '--to', '12']);
    expect(res.code).toBe(0);
    expect(
      readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).seq),
    ).toEqual([10, 11, 12]);
  });

  it('tail prints the last N events', async () => {
    const dir = await filled();
    const { out } = await run(['tail', '--data', dir, '-n', '3']);
    expect(
      out
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).seq),
    ).toEqual([30, 31, 32]);
  });

  it('one sentence and exit 1 for a directory without a log, or a log in use; usage errors throw', async () => {
    const d = tempDir();
    cleanups.push(d.cleanup);
    const none = await run(['stats', '--data', d.path]);
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/no ring log in/);
    const dir = await filled();
    const live = await openRingLog({
      dir,
      gatewayId: 'gw-cli',
      config: LOG_CONFIG,
    });
    try {
      const busy = await run(['stats', '--data', dir]);
      expect(busy.code).toBe(1);
      expect(busy.err).toMatch(/in use by another process/);
    } finally {
      await live.close();
    }
    await expect(buffer(['frobnicate', '--data', dir])).rejects.toBeInstanceOf(UsageError);
    await expect(buffer(['stats'])).rejects.toThrow(/--data is required/);
  });
});
