/** The retained bound, wrapped around aedes' own in-memory persistence (a real one, not a fake). */
import aedesPersistence from 'aedes-persistence';
import { describe, expect, it } from 'vitest';
import { limitRetained, type RetainedPersistence } from './retained.js';

async function retainedTopics(p: unknown): Promise<string[]> {
  const out: string[] = [];
  for await (const packet of (p as { createRetainedStream(pattern: string): AsyncIterable<{ topic: string }> }).createRetainedStream('#')) {
    out.push(packet.topic);
  }
  return out.sort();
}

describe('limitRetained', () => {
  it('keeps at most maxMessages and maxBytes, always allows replacing and clearing, and counts refusals', async () => {
    const persistence = (aedesPersistence as unknown as () => RetainedPersistence)();
    const refused: string[] = [];
    const bound = limitRetained(persistence, { maxMessages: 3, maxBytes: 100, onRefused: (t, b) => refused.push(`${t}:${b}`) });
    const put = (topic: string, payload: string) => persistence.storeRetained({ topic, payload: Buffer.from(payload) } as never);
    await put('a', 'x'.repeat(10));
    await put('b', 'x'.repeat(10));
    await put('c', 'x'.repeat(10));
    await put('d', 'x'); // count
    expect(refused).toEqual(['d:count']);
    await put('a', 'x'.repeat(90)); // replacing: 91 + 11 + 11 > 100
    expect(refused).toEqual(['d:count', 'a:bytes']);
    await put('a', 'y'.repeat(50)); // replacing within the bound
    await put('b', ''); // clearing
    expect(bound.count()).toBe(2);
    expect(bound.bytes()).toBe(51 + 11);
    await put('d', 'z');
    expect(await retainedTopics(persistence)).toEqual(['a', 'c', 'd']);
  });
});
