/**
 * The broker's own Receive Maximum, enforced on what clients send (MQTT 5 §3.3.4).
 *
 * aedes handles every packet of one socket read at once, so a client that pipelines publishes has
 * as many in the broker as it sends, and a QoS 2 one answered with PUBREC stays in aedes' incoming
 * store, in memory, until the client's PUBREL: one that never sends it could make the broker hold
 * 65,535 of them (every packet id), each up to broker.maxPayloadBytes.
 *
 * So a client may have at most the Receive Maximum the broker advertises in CONNACK unfinished: an
 * MQTT 5 client counts its QoS 1 publishes not yet acknowledged and its QoS 2 ones not yet released
 * (PUBREL); an MQTT 3.1.1 client, which was never told a maximum, only the QoS 2 ones (the memory
 * bound). A new publish past it closes the connection, with DISCONNECT 0x93 (Receive Maximum
 * exceeded) for MQTT 5; 3.1.1 has no other way to refuse. A QoS 2 copy re-sent with an id already
 * held is not new.
 *
 * Counted per connection: ids a persistent session still holds from an earlier connection are not
 * counted (each connection adds at most the maximum).
 */
import type { BrokerPersistence } from './aedes-adapter.js';

type Done = (err?: Error | null) => void;
type Packet = { qos?: number; messageId?: number; _notAuthorized?: boolean };

interface InFlight {
  /** QoS 1 publishes admitted and not yet acknowledged. */
  acking: number;
  /**
   * QoS 2 publishes admitted and not yet released, by packet id: the copies re-sent while the
   * first is not answered yet wait in its array; undefined once it was answered (stored).
   */
  held: Map<number, Done[] | undefined>;
}

interface Holder {
  sluiceInbound?: InFlight;
}

export class InboundWindow {
  constructor(
    persistence: Pick<BrokerPersistence, 'incomingDelPacket'>,
    readonly maximum: number,
  ) {
    const del = persistence.incomingDelPacket.bind(persistence);
    persistence.incomingDelPacket = async (client, packet) => {
      await del(client, packet);
      if (packet.messageId !== undefined) (client as Holder).sluiceInbound?.held.delete(packet.messageId);
    };
  }

  /** Whether a QoS 2 packet id is held for the client already: its publish is a copy re-sent before PUBREL. */
  holds(client: object, id: number | undefined): boolean {
    return id !== undefined && (client as Holder).sluiceInbound?.held.has(id) === true;
  }

  /**
   * Answers a copy re-sent before PUBREL, never before its first copy was answered: a PUBREC for
   * the copy acknowledges the message, so it waits for the first one's durable append (and gets
   * its error if that failed).
   */
  answerCopy(client: object, id: number, done: Done): void {
    const waiting = (client as Holder).sluiceInbound?.held.get(id);
    if (waiting) waiting.push(done);
    else done(null);
  }

  /**
   * Takes this publish's place in the client's window: returns the callback to hand aedes instead
   * of `done` (it frees the place once the publish is acknowledged or refused), or null when the
   * publish is past the maximum.
   */
  admit(client: object, v5: boolean, packet: Packet, done: Done): Done | null {
    const id = packet.messageId;
    if (!packet.qos || id === undefined) return done;
    const w = ((client as Holder).sluiceInbound ??= { acking: 0, held: new Map() });
    if (packet.qos === 2 && w.held.has(id)) return done;
    if (w.held.size + (v5 ? w.acking : 0) >= this.maximum) return null;
    if (packet.qos === 2) {
      const copies: Done[] = [];
      w.held.set(id, copies);
      // Released by PUBREL (above); a refused one is never stored, so it goes now.
      return (err) => {
        const failed = err || packet._notAuthorized;
        if (failed) w.held.delete(id);
        else w.held.set(id, undefined);
        done(err);
        for (const copy of copies) copy(failed ? new Error('the first copy of this QoS 2 publish was not stored') : null);
      };
    }
    w.acking++;
    return (err) => {
      w.acking--;
      done(err);
    };
  }
}
