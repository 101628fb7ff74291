/**
 * The read gate on a real stream: a held client reads nothing, and `release` makes it read what
 * waited (broker.test.ts covers it end to end with an MQTT client).
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ReadGate } from './read-gate.js';

function gatedClient(gate: ReadGate) {
  const conn = new PassThrough();
  const got: string[] = [];
  // What aedes' nextBatch does: read whatever is buffered.
  const client = {
    closed: false,
    _nextBatch: () => {
      const chunk = conn.read() as Buffer | null;
      if (chunk) got.push(chunk.toString());
    },
  };
  gate.attach(client, conn);
  return { client, conn, got };
}

describe('ReadGate', () => {
  it('reads nothing from a held client and what waited once released', () => {
    const gate = new ReadGate();
    const a = gatedClient(gate);
    const b = gatedClient(gate);
    a.conn.write('a1');
    b.conn.write('b1');
    gate.hold(a.client);
    a.client._nextBatch();
    b.client._nextBatch();
    expect(a.got).toEqual([]);
    expect(b.got).toEqual(['b1']);
    expect(gate.holding).toBe(true);
    a.conn.write('a2');
    gate.release();
    expect(a.got).toEqual(['a1a2']);
    expect(gate.holding).toBe(false);
  });

  it('keeps a client held again while it reads for the next release, and does not wake a closed one', () => {
    const gate = new ReadGate();
    const a = gatedClient(gate);
    const b = gatedClient(gate);
    // While reading what waited, `a` is held again (the log fell behind once more).
    const next = a.client._nextBatch;
    a.client._nextBatch = () => {
      next();
      gate.hold(a.client);
    };
    gate.hold(a.client);
    gate.hold(b.client);
    b.client.closed = true;
    a.conn.write('a1');
    b.conn.write('b1');
    gate.release();
    expect(a.got).toEqual(['a1']);
    expect(b.got).toEqual([]);
    expect(gate.holding).toBe(true);
    a.conn.write('a2');
    a.client._nextBatch = next;
    gate.release();
    expect(a.got).toEqual(['a1', 'a2']);
  });
});
