import { describe, expect, it } from 'vitest';
import { admitSubscription, type SubscribingClient } from './subscription-limit.js';

describe('admitSubscription', () => {
  it('counts filters granted and not yet recorded, allows re-subscribing, and forgets grants that never landed', () => {
    const client: SubscribingClient = {};
    let subs: Record<string, unknown> = { a: {} };
    expect(admitSubscription(client, subs, 'b', 3, 0)).toBe(true);
    expect(admitSubscription(client, subs, 'c', 3, 0)).toBe(true); // a + b (in flight) + c
    expect(admitSubscription(client, subs, 'd', 3, 0)).toBe(false);
    expect(admitSubscription(client, subs, 'a', 3, 0)).toBe(true); // has it already
    expect(admitSubscription(client, subs, 'b', 3, 0)).toBe(true); // granted already (a duplicate in one packet)
    subs = { a: {}, b: {} }; // b landed; c never did
    expect(admitSubscription(client, subs, 'd', 3, 10_000)).toBe(true);
    expect(admitSubscription(client, subs, 'e', 3, 10_000)).toBe(false);
  });
});
