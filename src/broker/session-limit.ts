/**
 * Bounds what the local broker keeps for persistent sessions (clean session = false).
 *
 * aedes' in-memory persistence queues every QoS 1/2 message for each persistent subscriber that
 * is offline, and keeps such a session forever: one sensor or tool that once subscribed to `#`
 * with a persistent session and went away would grow the gateway's memory with every reading.
 *
 * Guarantees (the way Mosquitto's `max_queued_messages` works):
 * - a message for an offline client is queued only while that client has fewer than
 *   `maxPerClient` messages and `maxBytesPerClient` bytes queued, and all clients together hold
 *   less than `maxBytesTotal` bytes; else it is
 *   not queued for that client (it is still in the ring log and delivered to everyone else), and
 *   counted through `onDrop`;
 * - a queued message leaves the count when the client acknowledges it after reconnecting;
 * - resuming a session while live messages flow does not disconnect the client: aedes resends a
 *   snapshot of the queue, and a message in it that was delivered and acknowledged meanwhile made
 *   `outgoingUpdate` throw "no such packet", which closed the client (in a loop, as it reconnects).
 *   Such a message is now sent once more instead (a duplicate, which QoS 1 allows).
 * The wrapper changes no other behaviour of the persistence it wraps.
 */

interface QueuedPacket {
  payload?: Buffer | string;
  topic?: string;
}

/** The slice of an aedes persistence this wraps (aedes-persistence's async API). */
export interface OutgoingPersistence {
  outgoingEnqueue(sub: { clientId: string }, packet: QueuedPacket): Promise<void>;
  outgoingEnqueueCombi(subs: { clientId: string }[], packet: QueuedPacket): Promise<void>;
  outgoingClearMessageId(client: { id: string }, packet: unknown): Promise<QueuedPacket | undefined>;
  outgoingUpdate(client: { id: string }, packet: unknown): Promise<void>;
}

export interface SessionLimits {
  maxPerClient: number;
  maxBytesPerClient: number;
  maxBytesTotal: number;
  /** Called once per message not queued for a client. */
  onDrop(clientId: string): void;
}

/** What a queued copy costs: the payload, the topic, and the packet object around them. */
function packetBytes(p: QueuedPacket | undefined): number {
  if (!p) return 0;
  const payload = p.payload === undefined ? 0 : typeof p.payload === 'string' ? p.payload.length : p.payload.length;
  return payload + (p.topic?.length ?? 0) + 200;
}

export function limitSessionQueues(persistence: OutgoingPersistence, limits: SessionLimits): { queuedBytes(): number } {
  const perClient = new Map<string, { n: number; bytes: number }>();
  let total = 0;
  const add = (clientId: string, bytes: number) => {
    const q = perClient.get(clientId);
    if (q) {
      q.n++;
      q.bytes += bytes;
    } else perClient.set(clientId, { n: 1, bytes });
    total += bytes;
  };
  const admit = (clientId: string, bytes: number): boolean => {
    const q = perClient.get(clientId) ?? { n: 0, bytes: 0 };
    if (q.n >= limits.maxPerClient || q.bytes + bytes > limits.maxBytesPerClient || total + bytes > limits.maxBytesTotal) {
      limits.onDrop(clientId);
      return false;
    }
    add(clientId, bytes);
    return true;
  };

  const enqueue = persistence.outgoingEnqueue.bind(persistence);
  const enqueueCombi = persistence.outgoingEnqueueCombi.bind(persistence);
  const clear = persistence.outgoingClearMessageId.bind(persistence);
  const update = persistence.outgoingUpdate.bind(persistence);

  // An online persistent client's copy is queued until it acknowledges it: always admitted (aedes
  // would fail the delivery otherwise), but counted. A client that does not read is dropped by the
  // broker's slow-consumer guard, which clears nothing here: its queue then counts as offline.
  persistence.outgoingEnqueue = async (sub, packet) => {
    add(sub.clientId, packetBytes(packet));
    await enqueue(sub, packet);
  };
  persistence.outgoingEnqueueCombi = async (subs, packet) => {
    const bytes = packetBytes(packet);
    const admitted = subs.filter((s) => admit(s.clientId, bytes));
    if (admitted.length) await enqueueCombi(admitted, packet);
  };
  persistence.outgoingClearMessageId = async (client, packet) => {
    const removed = await clear(client, packet); // no callback: aedes 1.x uses the promise API
    const q = removed && perClient.get(client.id);
    if (q) {
      const bytes = packetBytes(removed);
      q.n--;
      q.bytes -= bytes;
      if (q.n <= 0) perClient.delete(client.id);
      total = Math.max(0, total - bytes);
    }
    return removed;
  };
  persistence.outgoingUpdate = async (client, packet) => {
    try {
      await update(client, packet);
    } catch (err) {
      if ((err as Error).message !== 'no such packet') throw err;
    }
  };
  return { queuedBytes: () => total };
}
