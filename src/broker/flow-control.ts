/**
 * MQTT 5 flow control on what the broker sends (MQTT 5.0 §3.1.2.11.3, §4.9): a client that sent
 * a Receive Maximum in its CONNECT never has more QoS 1/2 PUBLISHes from the broker unacknowledged
 * than that. aedes 2.0.0-beta.1 records the value but sends without limit, and a small device
 * that asked for 2 is then sent hundreds at once.
 *
 * Guarantees:
 * - at most Receive Maximum QoS 1/2 PUBLISHes written to the client wait for their PUBACK or
 *   PUBCOMP (or a PUBREC with an error code, which ends a QoS 2 exchange, §4.9); further ones wait
 *   here in order and go out one per acknowledgement. QoS 0 goes out at once. MQTT 3.1.1 clients
 *   have no Receive Maximum and nothing changes for them.
 * - a message held here counts as written for aedes, so its delivery completes at once: the
 *   publisher's PUBACK never waits for a subscriber's acknowledgements (as with the slow-consumer
 *   guard, client-guards.ts).
 * - what waits here plus what waits in the socket is bounded by the slow-consumer bound, and
 *   what waits here by MAX_HELD messages: past either the client is dropped as a slow consumer (it
 *   does not acknowledge what it subscribed to).
 * - persistent sessions: aedes stores each QoS 1/2 message with its packet id before writing it
 *   (deliverQoS, and the queue sent on reconnect), so what was held or unacknowledged when the
 *   connection closed is sent again on the next one, in order, through the new connection's window
 *   (at least once: an unacknowledged message may arrive twice, a held one once). Not retained
 *   messages sent on subscribe, which aedes does not store, in flight or not: the subscription
 *   restored on reconnect does not send them again either.
 * - a held message whose Message Expiry passed while it waited is not sent (§3.3.2.3.3); one
 *   that waited goes with the interval that remains.
 * - retained messages sent on subscribe are paced on what waits here too (`pacedConn`), so a
 *   large retained set reaches a client with a small window without tripping the bound.
 */
import type { Client } from 'aedes';
import type { Logger } from 'pino';
import { type InboundPacket, interceptPublishes, type OutboundPublish } from './aedes-adapter.js';

interface FlowContext {
  logger: Logger;
  countRejected(reason: string): void;
}

/** What the window needs of the client's socket. */
export interface FlowConn {
  writableLength: number;
  destroyed: boolean;
  destroy(): void;
  once(ev: 'drain' | 'close', f: () => void): unknown;
  off(ev: 'drain' | 'close', f: () => void): unknown;
}

interface Held {
  packet: OutboundPublish;
  write: (packet: OutboundPublish) => boolean;
  bytes: number;
}

/** Counted per held message besides its topic and payload: the packet object aedes made for it. */
const HELD_OVERHEAD_BYTES = 256;
/**
 * Messages held per client at most: aedes gives each its 16-bit packet id when it writes it, so
 * what waits here and what is in flight must stay well below 65,535 ids, or one would be reused.
 */
const MAX_HELD = 32_768;
/** The lowest reason code that is an error (MQTT 5 §2.4). */
const ERROR_REASON = 0x80;

export class SendWindow {
  private readonly inflight = new Set<number>();
  private held: Held[] = [];
  private head = 0;
  private bytes = 0;
  private readonly emptied = new Set<() => void>();
  private dropped = false;

  constructor(
    private readonly receiveMaximum: () => number | undefined,
    private readonly conn: FlowConn,
    private readonly maxBacklogBytes: number,
    private readonly onOverflow: (why: string) => void,
  ) {
    conn.once('close', () => this.clear());
  }

  /** Bytes of the messages waiting here for a free slot. */
  get queuedBytes(): number {
    return this.bytes;
  }

  /** Messages waiting here, and messages sent and not yet acknowledged. */
  get counts(): { queued: number; inflight: number } {
    return { queued: this.held.length - this.head, inflight: this.inflight.size };
  }

  /** A PUBLISH aedes writes: written now, or held until a slot frees (returns what aedes expects of a write). */
  send(packet: OutboundPublish, write: (packet: OutboundPublish) => boolean): boolean {
    const limit = this.receiveMaximum();
    const id = packet.messageId;
    if (limit === undefined || !packet.qos || id === undefined) return write(packet);
    if (this.dropped) return true;
    if (this.inflight.size < limit && this.head === this.held.length) {
      this.inflight.add(id);
      return write(packet);
    }
    const bytes = HELD_OVERHEAD_BYTES + (packet.topic?.length ?? 0) + payloadBytes(packet.payload);
    const tooMany = this.held.length - this.head >= MAX_HELD;
    if (tooMany || this.bytes + bytes + this.conn.writableLength > this.maxBacklogBytes) {
      this.dropped = true;
      this.clear();
      const what = tooMany ? `${MAX_HELD} messages` : `${this.maxBacklogBytes} bytes`;
      this.onOverflow(`more than ${what} wait for its acknowledgements (Receive Maximum ${limit})`);
      return true;
    }
    this.held.push({ packet, write, bytes });
    this.bytes += bytes;
    return true;
  }

  /** A packet from the client: an acknowledgement that ends an exchange frees its slot. */
  received(packet: InboundPacket): void {
    const ends = packet.cmd === 'puback' || packet.cmd === 'pubcomp' || (packet.cmd === 'pubrec' && (packet.reasonCode ?? 0) >= ERROR_REASON);
    if (!ends || packet.messageId === undefined || !this.inflight.delete(packet.messageId)) return;
    this.pump();
  }

  /**
   * The socket as the retained pacing sees it (retained.ts): what waits here counts as unsent,
   * and once this much waits here, 'drain' is when it has all gone out.
   */
  pacedConn(conn: FlowConn): FlowConn {
    const held = () => this.bytes;
    return {
      get writableLength() {
        return conn.writableLength + held();
      },
      get destroyed() {
        return conn.destroyed;
      },
      destroy: () => conn.destroy(),
      once: (ev, f) => (ev === 'drain' && this.bytes > 0 ? this.emptied.add(f) : conn.once(ev, f)),
      off: (ev, f) => {
        this.emptied.delete(f);
        return conn.off(ev, f);
      },
    };
  }

  private pump(): void {
    const limit = this.receiveMaximum() ?? 0;
    while (this.head < this.held.length && this.inflight.size < limit && !this.conn.destroyed) {
      const next = this.held[this.head++];
      this.bytes -= next.bytes;
      const packet = unexpired(next.packet);
      if (!packet) continue;
      this.inflight.add(packet.messageId!);
      try {
        next.write(packet);
      } catch {
        // aedes treats a packet it cannot serialize as a client error and closes the connection.
        this.conn.destroy();
      }
    }
    if (this.head === this.held.length) this.clear();
    else if (this.head > 1024 && this.head * 2 > this.held.length) {
      this.held = this.held.slice(this.head);
      this.head = 0;
    }
  }

  private clear(): void {
    this.held = [];
    this.head = 0;
    this.bytes = 0;
    const waiting = [...this.emptied];
    this.emptied.clear();
    for (const f of waiting) f();
  }
}

/**
 * Puts a send window on a client as aedes makes it (before its CONNECT: the Receive Maximum is
 * read once the client writes). Undefined when this aedes cannot be hooked (aedes-adapter.test.ts
 * fails then).
 */
export function enforceReceiveMaximum(client: Client, conn: FlowConn, limits: { maxBacklogBytes: number }, ctx: FlowContext): SendWindow | undefined {
  let receiveMaximum: () => number | undefined = () => undefined;
  const window = new SendWindow(() => receiveMaximum(), conn, limits.maxBacklogBytes, (why) => {
    if (conn.destroyed) return;
    ctx.countRejected('slow_consumer');
    ctx.logger.warn({ client: client.id, why }, 'subscriber dropped: it does not acknowledge what it subscribed to (slow consumer)');
    conn.destroy();
  });
  const hooked = interceptPublishes(client, conn, {
    send: (packet, write) => window.send(packet, write),
    received: (packet) => window.received(packet),
  });
  if (!hooked) return undefined;
  receiveMaximum = hooked.receiveMaximum;
  return window;
}

function payloadBytes(payload: Buffer | string | undefined): number {
  if (payload === undefined) return 0;
  return typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
}

/** The packet to send after waiting here: undefined once expired, else with the interval that remains. */
function unexpired(packet: OutboundPublish): OutboundPublish | undefined {
  if (packet.messageExpiry === undefined) return packet;
  const left = packet.messageExpiry - Date.now();
  if (left <= 0) return undefined;
  const interval = Math.ceil(left / 1000);
  if (packet.properties?.messageExpiryInterval === interval) return packet;
  // aedes shares one properties object between a message's subscribers: replaced, not changed.
  return { ...packet, properties: { ...packet.properties, messageExpiryInterval: interval } };
}
