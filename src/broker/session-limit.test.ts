/** The session queue bound, wrapped around aedes' own in-memory persistence (a real one, not a fake). */
import aedesPersistence from 'aedes-persistence';
import { describe, expect, it } from 'vitest';
import { limitSessionQueues, type OutgoingPersistence } from './session-limit.js';

type Memory = OutgoingPersistence & {
  outgoingStream(c: { id: string }): AsyncIterable<unknown>;
  outgoingUpdate(c: { id: string }, packet: object): Promise<void>;
};
// A CommonJS module: its default export is the factory (typed loosely by its own d.ts).
const memory = aedesPersistence as unknown as () => Memory;

const packet = (i: number, bytes = 100) => ({
  cmd: 'publish' as const,
  topic: 't',
  payload: Buffer.alloc(bytes),
  qos: 1 as const,
  retain: false,
  dup: false,
  brokerId: 'b',
  brokerCounter: i,
  messageId: i,
});

async function drain(p: Memory, id: string) {
  const out: unknown[] = [];
  for await (const x of p.outgoingStream({ id })) out.push(x);
  return out;
}

describe('limitSessionQueues', () => {
  it('queues at most maxPerClient messages per offline client, counts the rest, frees on acknowledgement', async () => {
    const p = memory();
    const dropped: string[] = [];
    limitSessionQueues(p, { maxPerClient: 3, maxBytesPerClient: 1e6, maxBytesTotal: 1e6, onDrop: (id) => dropped.push(id) });
    for (let i = 1; i <= 5; i++) await p.outgoingEnqueueCombi([{ clientId: 'a' }, { clientId: 'b' }], packet(i));
    expect(await drain(p, 'a')).toHaveLength(3);
    expect(await drain(p, 'b')).toHaveLength(3);
    expect(dropped).toEqual(['a', 'b', 'a', 'b']);
    // Sent on reconnect (aedes numbers it), then acknowledged: that makes room for one more.
    await p.outgoingUpdate({ id: 'a' }, { ...packet(1), messageId: 42 });
    await p.outgoingClearMessageId({ id: 'a' }, { messageId: 42 });
    await p.outgoingEnqueueCombi([{ clientId: 'a' }], packet(6));
    expect(await drain(p, 'a')).toHaveLength(3);
    expect(dropped).toHaveLength(4);
  });

  it('bounds bytes per client and over all clients', async () => {
    const p = memory();
    let drops = 0;
    const limit = limitSessionQueues(p, { maxPerClient: 1000, maxBytesPerClient: 3000, maxBytesTotal: 5000, onDrop: () => drops++ });
    for (let i = 1; i <= 10; i++) await p.outgoingEnqueueCombi([{ clientId: 'a' }], packet(i, 1000));
    expect(await drain(p, 'a')).toHaveLength(2); // 2 × (1000 + overhead) fit under 3000
    for (let i = 1; i <= 10; i++) await p.outgoingEnqueueCombi([{ clientId: 'b' }], packet(i, 1000));
    expect((await drain(p, 'b')).length).toBeLessThan(3); // the total bound bites first
    expect(limit.queuedBytes()).toBeLessThanOrEqual(5000);
    expect(drops).toBeGreaterThan(10);
  });

  it('resending a message that was acknowledged meanwhile is not an error', async () => {
    const p = memory();
    limitSessionQueues(p, { maxPerClient: 10, maxBytesPerClient: 1e6, maxBytesTotal: 1e6, onDrop: () => {} });
    await p.outgoingEnqueueCombi([{ clientId: 'a' }], packet(1));
    await p.outgoingUpdate({ id: 'a' }, { ...packet(1), messageId: 7 });
    await p.outgoingClearMessageId({ id: 'a' }, { messageId: 7 });
    // aedes' resend of its snapshot of the queue: the packet is gone; aedes would close the client.
    await expect(p.outgoingUpdate({ id: 'a' }, { ...packet(1), messageId: 8 })).resolves.toBeUndefined();
  });
});
