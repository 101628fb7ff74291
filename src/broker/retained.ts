/**
 * Retained messages: bounded, and sent to a new subscriber at the pace it reads.
 *
 * aedes keeps every retained message in memory, without limit, and sends all that match a new
 * subscription at once: 1,200 large retained messages took hundreds of MiB, and ~30 MiB of them
 * made every matching subscriber trip the slow-consumer guard.
 *
 * Guarantees:
 * - at most `maxMessages` retained messages and `maxBytes` of topic + payload are kept; a retained
 *   publish that would pass either bound is delivered to current subscribers as usual but not
 *   retained, counted through `onRefused` (replacing or clearing an existing one is always allowed);
 * - retained messages for a new subscription are written one after another, each once the
 *   subscriber's socket is below `lowWaterBytes`, so a large retained set reaches a reading client
 *   however large it is, without counting as a slow consumer. A client that stops reading is still
 *   dropped by the slow-consumer timer.
 */

import type { Client } from 'aedes';
import { wrapDelivery } from './aedes-adapter.js';

interface RetainedPacket {
  topic: string;
  payload: Buffer | string;
}

/** The slice of an aedes persistence this wraps. */
export interface RetainedPersistence {
  storeRetained(packet: RetainedPacket): Promise<void>;
}

export interface RetainedLimits {
  maxMessages: number;
  maxBytes: number;
  /** Called for each retained publish not kept, with the bound it would pass. */
  onRefused(topic: string, bound: 'count' | 'bytes'): void;
}

function size(p: RetainedPacket): number {
  return p.topic.length + (typeof p.payload === 'string' ? Buffer.byteLength(p.payload) : p.payload.length);
}

export function limitRetained(persistence: RetainedPersistence, limits: RetainedLimits): { count(): number; bytes(): number } {
  const kept = new Map<string, number>();
  let total = 0;
  const store = persistence.storeRetained.bind(persistence);
  persistence.storeRetained = async (packet) => {
    const before = kept.get(packet.topic);
    const empty = packet.payload.length === 0; // an empty retained message clears the topic
    const bytes = empty ? 0 : size(packet);
    if (!empty && before === undefined && kept.size >= limits.maxMessages) return limits.onRefused(packet.topic, 'count');
    if (!empty && total - (before ?? 0) + bytes > limits.maxBytes) return limits.onRefused(packet.topic, 'bytes');
    await store(packet);
    total -= before ?? 0;
    if (empty) kept.delete(packet.topic);
    else {
      kept.set(packet.topic, bytes);
      total += bytes;
    }
  };
  return { count: () => kept.size, bytes: () => total };
}

/**
 * Paces the retained messages aedes sends on subscribe (the only packets it delivers with the
 * retain flag set, unless an MQTT 5 subscriber asked for retain-as-published; pacing those too
 * costs nothing).
 */
export function paceRetained(
  client: Client,
  conn: { writableLength: number; destroyed: boolean; once(ev: 'drain' | 'close', f: () => void): unknown; off(ev: 'drain' | 'close', f: () => void): unknown },
  lowWaterBytes: number,
): void {
  wrapDelivery(client, (deliver) => (packet, cb) => {
    if (!packet.retain) return deliver(packet, cb);
    deliver(packet, (err) => {
      if (err || conn.destroyed || conn.writableLength <= lowWaterBytes) return cb(err);
      const go = () => {
        conn.off('drain', go);
        conn.off('close', go);
        cb(null);
      };
      conn.once('drain', go);
      conn.once('close', go);
    });
  });
}
