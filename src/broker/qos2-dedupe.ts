/**
 * A QoS 2 PUBLISH is stored once, however often the client re-sends it before PUBREL.
 *
 * The broker stores an ingest publish in `authorizePublish`, which aedes calls for every copy it
 * receives, before its own QoS 2 duplicate check. A re-sent copy (same packet id, before the
 * client's PUBREL) must only be answered again (aedes sends the PUBREC), not stored again.
 *
 * Guarantees:
 * - within a connection, a packet id seen and not yet released (PUBREL) is a duplicate;
 * - after a reconnect of a persistent session, a packet id aedes still holds in its incoming store
 *   (the first copy arrived on the previous connection) is a duplicate;
 * - the ids tracked per client are those aedes itself holds (at most the broker's Receive Maximum
 *   on one connection, inbound-window.ts), released when aedes deletes the packet on PUBREL.
 */

export interface Qos2Client {
  id: string;
  sluiceQos2?: Set<number>;
}

/** The slice of an aedes persistence this uses and wraps. */
export interface IncomingPersistence {
  incomingGetPacket(client: { id: string }, packet: { messageId?: number }): Promise<unknown>;
  incomingDelPacket(client: unknown, packet: { messageId?: number }): Promise<void>;
}

export class Qos2Dedupe {
  constructor(private readonly persistence: IncomingPersistence) {
    const del = persistence.incomingDelPacket.bind(persistence);
    persistence.incomingDelPacket = async (client, packet) => {
      await del(client, packet);
      if (packet.messageId !== undefined) (client as Qos2Client).sluiceQos2?.delete(packet.messageId);
    };
  }

  /** Calls back `true` when this publish is a copy of one already stored, `false` for a new one. */
  isDuplicate(client: Qos2Client, persistent: boolean, messageId: number | undefined, done: (duplicate: boolean) => void): void {
    if (messageId === undefined) return done(false);
    const seen = (client.sluiceQos2 ??= new Set());
    if (seen.has(messageId)) return done(true);
    seen.add(messageId);
    // A clean session's incoming store was emptied when it connected: nothing from before.
    if (!persistent) return done(false);
    this.persistence.incomingGetPacket(client, { messageId }).then(
      () => done(true), // aedes' store resolves for a packet it holds
      () => done(false), // and rejects for one it does not
    );
  }
}
