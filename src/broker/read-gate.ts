/**
 * Holds clients' reads while the ring log is behind on their QoS 0 data.
 *
 * aedes reads a client's socket only through `conn.read(null)`, once the packets it read before are
 * handled. A held client's read returns nothing, so aedes stops reading it until the gate wakes it
 * (aedes-adapter.ts `readControl`). Its data waits in the socket and
 * kernel buffers meanwhile, and TCP slows the sender: nothing is dropped, and no publish is kept
 * waiting in memory. Keeping each QoS 0 publish waiting for the disk instead, as before, kept
 * aedes' objects for it alive across young-generation garbage collections, which cost more than
 * storing them.
 */
import type { Readable } from 'node:stream';
import type { Client } from 'aedes';
import { readControl } from './aedes-adapter.js';

/** A client of the gate: an aedes client (any object aedes-adapter's `readControl` accepts). */
export type GatedClient = object;

interface Gate {
  wake(): void;
  held: boolean;
}

export class ReadGate {
  private readonly gates = new WeakMap<GatedClient, Gate>();
  private held: Gate[] = [];

  /** Gates a client's reads (left ungated if this aedes has no read loop to hold). */
  attach(client: GatedClient, conn: Readable): void {
    const gate: Gate = { wake: () => {}, held: false };
    const control = readControl(client as Client, conn, () => gate.held);
    if (!control) return;
    gate.wake = control.wake;
    this.gates.set(client, gate);
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
      gate.wake();
    }
  }
}
