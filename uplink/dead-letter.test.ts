import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../test/helpers/peers.js';
import { DeadLetterStore } from './dead-letter.js';
import { MemoryLog } from '../test/helpers/uplink/memory-log.js';
import { TransmitWindows } from './window.js';
import { topicMatches } from './filter.js';
import { fullJitter } from './backoff.js';

const dirs: { cleanup(): void }[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) d.cleanup();
});

describe('DeadLetterStore', () => {
  it('keeps one line per event with its reason, survives a reopen, and stays within maxBytes', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const log = new MemoryLog('gw');
    log.appendN(400);
    const maxBytes = 20_000;
    let store = await DeadLetterStore.open(dir.path, 'cloud', maxBytes);
    await store.add(log.events.slice(0, 2), 'payload refused');
    const first = readFileSync(store.path, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(first).toHaveLength(2);
    expect(first[0]).toMatchObject({ uplink: 'cloud', reason: 'payload refused', event: { seq: 1, id: 'gw:1' } });
    await store.close();

    store = await DeadLetterStore.open(dir.path, 'cloud', maxBytes);
    expect(store.stats().held).toBe(2);
    for (let i = 2; i < 400; i += 10) await store.add(log.events.slice(i, i + 10), 'refused');
    const s = store.stats();
    expect(s.bytes).toBeLessThanOrEqual(maxBytes);
    expect(s.discarded).toBeGreaterThan(0);
    // everything added is either held or counted as discarded
    expect(s.held + s.discarded).toBe(400);
    await store.close();
  });
});

describe('TransmitWindows', () => {
  it('is open in the minutes its expressions match', () => {
    const w = new TransmitWindows(['* 0-5 * * *', '30 12 * * 1-5']);
    expect(w.isOpen(new Date(2026, 0, 5, 3, 17, 42))).toBe(true);
    expect(w.isOpen(new Date(2026, 0, 5, 6, 0, 0))).toBe(false);
    expect(w.isOpen(new Date(2026, 0, 5, 12, 30, 59))).toBe(true); // a Monday
    expect(w.isOpen(new Date(2026, 0, 4, 12, 30, 0))).toBe(false); // a Sunday
    expect(w.msToNextCheck(60_000 * 10 + 1_000)).toBe(59_005);
    w.close();
  });
});

describe('helpers', () => {
  it('matches MQTT topic filters', () => {
    expect(topicMatches('plant/#', 'plant')).toBe(true);
    expect(topicMatches('plant/#', 'plant/a/b')).toBe(true);
    expect(topicMatches('plant/+/temp', 'plant/a/temp')).toBe(true);
    expect(topicMatches('plant/+/temp', 'plant/a/b/temp')).toBe(false);
    expect(topicMatches('#', '$SYS/x')).toBe(false);
    expect(topicMatches('a/b', 'a/b/c')).toBe(false);
  });

  it('full jitter stays in [0, min(cap, base·2^n)]', () => {
    expect(fullJitter(0, 500, 60_000, () => 0.999)).toBeLessThan(500);
    expect(fullJitter(3, 500, 60_000, () => 0.999)).toBeLessThan(4000);
    expect(fullJitter(3, 500, 60_000, () => 0.999)).toBeGreaterThan(3900);
    expect(fullJitter(30, 500, 60_000, () => 0.999)).toBeLessThan(60_000);
    expect(fullJitter(5, 500, 60_000, () => 0)).toBe(0);
  });
});
