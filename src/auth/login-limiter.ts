/**
 * Failed-login limits per client address and per username, over one-minute windows.
 *
 * An attempt takes its slot BEFORE the password is checked (`reserve`), and gives it back only if
 * the password was right (`Reservation.succeeded`). Checking the count first and adding the
 * failure after the scrypt work, as before, let any number of parallel attempts through: each saw
 * the count below the limit while the others were still hashing.
 *
 * The per-username limit stops guessing spread over many addresses; so that it cannot lock a
 * working device out, an address where that username logged in successfully (in the last day) is
 * exempt from it (the per-address limit still applies there).
 *
 * Bounded: at most `maxTracked` addresses, usernames and address/username pairs are tracked; past
 * that the oldest is forgotten (a scan from very many addresses gets the limit of a fresh address).
 */

const WINDOW_MS = 60_000;
const TRUSTED_MS = 24 * 3600_000;

export interface LoginLimits {
  /** Failed (or still running) attempts per client address per minute. */
  perAddress: number;
  /** Failed (or still running) attempts per username per minute, from all addresses together. */
  perUser: number;
  maxTracked?: number;
}

interface Window {
  count: number;
  since: number;
}

/** One attempt's slots; `succeeded` returns them, anything else keeps them counted as a failure. */
export interface Reservation {
  succeeded(): void;
  /** The attempt could not be judged (the verifier was busy): not the client's failure. */
  abandoned(): void;
}

export type Refusal = 'address' | 'user';

class Windows {
  private readonly windows = new Map<string, Window>();
  constructor(private readonly maxTracked: number) {}

  /** Takes a slot unless `limit` are taken in the current window; returns the window or undefined. */
  take(key: string, limit: number, now: number): Window | undefined {
    let w = this.windows.get(key);
    if (!w || now - w.since >= WINDOW_MS) {
      if (w) this.windows.delete(key);
      w = { count: 0, since: now };
      this.windows.set(key, w);
      if (this.windows.size > this.maxTracked) this.windows.delete(this.windows.keys().next().value as string);
    }
    if (w.count >= limit) return undefined;
    w.count++;
    return w;
  }

  static give(w: Window | undefined): void {
    if (w && w.count > 0) w.count--;
  }
}

export class LoginLimiter {
  private readonly addresses: Windows;
  private readonly users: Windows;
  /** `address\0username` → when that user last logged in from there. */
  private readonly trusted = new Map<string, number>();
  private readonly maxTracked: number;

  constructor(private limits: LoginLimits) {
    this.maxTracked = limits.maxTracked ?? 10_000;
    this.addresses = new Windows(this.maxTracked);
    this.users = new Windows(this.maxTracked);
  }

  /** New limits apply to the next attempt (hot reload keeps the counts). */
  configure(limits: LoginLimits): void {
    this.limits = limits;
  }

  /** Takes a slot for one attempt, or says which limit refuses it. `username` undefined: a bearer token. */
  reserve(address: string, username: string | undefined, now = Date.now()): Reservation | Refusal {
    const a = this.addresses.take(address, this.limits.perAddress, now);
    if (!a) return 'address';
    let u: Window | undefined;
    const pair = username === undefined ? undefined : `${address}\0${username}`;
    const trustedAt = pair === undefined ? undefined : this.trusted.get(pair);
    if (username !== undefined && !(trustedAt !== undefined && now - trustedAt < TRUSTED_MS)) {
      u = this.users.take(username, this.limits.perUser, now);
      if (!u) {
        Windows.give(a);
        return 'user';
      }
    }
    let open = true;
    const give = () => {
      if (!open) return;
      open = false;
      Windows.give(a);
      Windows.give(u);
    };
    return {
      succeeded: () => {
        give();
        if (pair === undefined) return;
        this.trusted.delete(pair); // re-inserted last: the map's order is oldest first
        this.trusted.set(pair, now);
        if (this.trusted.size > this.maxTracked) this.trusted.delete(this.trusted.keys().next().value as string);
      },
      abandoned: give,
    };
  }
}
