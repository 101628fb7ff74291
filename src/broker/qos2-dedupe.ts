/**
 * A QoS 2 PUBLISH is stored once, however often the client re-sends it before PUBREL.
 *
 * The broker stores an ingest publish in `authorizePublish`, which aedes calls for every copy it
 * receives, before its own QoS 2 duplicate check. A re-sent copy must only be answered again (aedes
 * sends the PUBREC), not stored again:
 * - within a connection, the broker's inbound window (inbound-window.ts) holds every QoS 2 packet
 *   id admitted and not yet released (PUBREL): a publish with one of those is a copy, and the
 *   broker answers it without storing it, once the first copy was stored (answerCopy);
 * - after a reconnect of a persistent session, the window starts empty, and a packet id aedes still
 *   holds in its incoming store (the first copy arrived on the previous connection) is a copy:
 *   `storedBefore` asks aedes' store.
 */

/** The slice of an aedes persistence this asks. */
export interface IncomingPersistence {
  incomingGetPacket(client: { id: string }, packet: { messageId?: number }): Promise<unknown>;
}

/**
 * Calls back `true` when a QoS 2 publish new on this connection was received (and stored) on an
 * earlier connection of the same persistent session. A clean session's incoming store was emptied
 * when it connected: nothing is from before.
 */
export function storedBefore(
  persistence: IncomingPersistence,
  client: { id: string },
  persistent: boolean,
  messageId: number | undefined,
  done: (stored: boolean) => void,
): void {
  if (!persistent || messageId === undefined) return done(false);
  persistence.incomingGetPacket(client, { messageId }).then(
    () => done(true), // aedes' store resolves for a packet it holds
    () => done(false), // and rejects for one it does not
  );
}
