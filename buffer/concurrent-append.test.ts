/**
 * Regression (found by the lead's end-to-end test): appends that arrive while a group commit is
 * being written must not lose their seqs when the commit finishes (seq reuse overwrote chunks).
 */

import { mkdtempSync } from 'node:fs';
import { expect, it } from 'vitest';
import { validateConfig } from '../src/config/load.js';
import { openRingLog } from './index.js';

it('keeps every seq when single appends race a group commit in flight', async () => {
  const dir = mkdtempSync('/tmp/rl-');
  const log = await openRingLog({
    dir,
    gatewayId: 'g',
    config: validateConfig({ buffer: { commitInterval: 2 } }).buffer,
  });
  const r = log.reader('u');
  const ps = [];
  for (let i = 0; i < 2000; i++) {
    ps.push(log.append([{ source: 'mqtt', topic: 't', payload: i }]));
    if (i % 37 === 0) await new Promise((res) => setTimeout(res, 1));
  }
  await Promise.all(ps);
  const s = log.stats();
  let got = 0;
  for (;;) {
    const ev = await r.next(1000, 1e9);
    if (ev.length === 0) break;
    got += ev.length;
    await r.commit(ev[ev.length - 1].seq);
  }
  expect(s.lastSeq).toBe(2000);
  expect(got).toBe(2000);
  await log.close();
});
