/**
 * Holds clients' reads while the ring log is behind on their QoS 0 data.
 *
 * aedes reads a client's socket only through `conn.read(null)`, once the packets it read before are
 * handled. A held client's read returns nothing, so aedes stops reading it until the gate wakes it
 * (its `_nextBatch`, the call aedes makes when a batch is handled). Its data waits in the socket and
 * kernel buffers meanwhile, and TCP slows the sender: nothing is dropped, and no publish is kept
 * waiting in memory. Keeping each QoS 0 publish waiting for the disk instead, as before, kept
 * aedes' objects for it alive across young-generation garbage collections, which cost more than
 * storing them (issue 3: QoS 0 ingest 236-246k msg/s that way, 264-272k with this gate).
 */
import type { Readable } from 'node:stream';

/** The part of an aedes client the gate uses. */
export interface GatedClient {
  closed?: boolean;
  /** aedes: handles the next batch of packets (reads the socket) once the current one is done. */
  _nextBatch?: () => void;
}

interface Gate {
  client: GatedClient;
  held: boolean;
}

export class ReadGate {
  private readonly gates = new WeakMap<GatedClient, Gate>();
  private held: Gate[] = [];

  /** Gates a client's reads. A client without aedes' `_nextBatch` (another aedes version) is left ungated. */
  attach(client: GatedClient, conn: Readable): void {
    if (typeof client._nextBatch !== 'function') return;
    const gate: Gate = { client, held: false };
    this.gates.set(client, gate);
    const read = conn.read;
    conn.read = (size?: number): unknown => (gate.held ? null : read.call(conn, size));
  }

  /** Stops reading from this client until `release`. */
  hold(client: GatedClient): void {
    const gate = this.gates.get(client);
    if (!gate || gate.held) return;
    gate.held = true;
    this.held.push(gate);
  }

  get holding(): boolean {
    return this.held.length > 0;
  }

  /** Reads again from every held client. */
  release(): void {
    // A client may be held again while it reads what waited: it joins the next round.
    const gates = this.held;
    this.held = [];
    for (const gate of gates) {
      gate.held = false;
      // The read aedes skipped: it reads what waited and goes on.
      if (!gate.client.closed) gate.client._nextBatch?.();
    }
  }
}
