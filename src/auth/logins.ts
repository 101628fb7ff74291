/**
 * Every password and token check of the gateway goes through one `Logins`: MQTT CONNECT, HTTP
 * ingest bearer tokens and HTTP basic auth share its limits, its scrypt thread and its cache.
 *
 * Guarantees:
 * - limits first: an attempt takes its slot in the per-address and per-username limits
 *   (login-limiter.ts) before any work, so parallel attempts cannot all get through, and a
 *   refused attempt costs no hashing;
 * - scrypt never runs on libuv's pool (which the ring log's writes use): it runs on one worker
 *   thread with at most `maxQueued` checks waiting (scrypt-pool.ts); past that a check is refused
 *   as `auth_busy` (the client retries; its slot is given back);
 * - a verified secret is remembered, as an HMAC under a key that lives only in this process and
 *   together with the hash it matched (a changed hash in the config no longer matches), for
 *   `cacheTtlMs`, at most `cacheSize` of them: a device that reconnects in a loop costs one HMAC,
 *   not one scrypt. The cache is consulted after the limits, so it gives no faster way to guess.
 * - failures are never cached, so a wrong password never locks the right one out of the cache;
 * - an unknown username costs the same scrypt work as a wrong password (a decoy hash is checked),
 *   so the time of a refusal does not reveal which usernames exist.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { type LoginLimits, LoginLimiter, type Refusal } from './login-limiter.js';
import { decoyHash, keyMatches, parseHash } from './password.js';
import { ScryptBusyError, ScryptPool } from './scrypt-pool.js';

export interface LoginAttempt {
  /** The client's address (per-address limit). */
  address: string;
  /** The username given (per-username limit); undefined for a bearer token. */
  username?: string;
  secret: string;
  /** The stored hashes the secret may match (one user's, or every token's); empty: unknown user. */
  hashes: readonly string[];
}

export type LoginResult =
  | { ok: true; /** which of `hashes` matched */ index: number }
  | { ok: false; reason: 'auth_failed' }
  | { ok: false; reason: 'auth_rate_limited'; limit: Refusal }
  | { ok: false; reason: 'auth_busy' };

export interface LoginsOptions {
  maxQueued?: number;
  cacheSize?: number;
  cacheTtlMs?: number;
}

export class Logins {
  private readonly limiter: LoginLimiter;
  private readonly pool: ScryptPool;
  private readonly key = randomBytes(32);
  private readonly decoy = [decoyHash()];
  /** HMAC of hash and secret → when it stops being trusted. Oldest first. */
  private readonly verified = new Map<string, number>();
  private readonly cacheSize: number;
  private readonly cacheTtlMs: number;

  constructor(limits: LoginLimits, opts: LoginsOptions = {}) {
    this.limiter = new LoginLimiter(limits);
    this.pool = new ScryptPool(opts.maxQueued ?? 32);
    this.cacheSize = opts.cacheSize ?? 1024;
    this.cacheTtlMs = opts.cacheTtlMs ?? 15 * 60_000;
  }

  configure(limits: LoginLimits): void {
    this.limiter.configure(limits);
  }

  async check(attempt: LoginAttempt): Promise<LoginResult> {
    const slot = this.limiter.reserve(attempt.address, attempt.username);
    if (typeof slot === 'string') return { ok: false, reason: 'auth_rate_limited', limit: slot };
    const now = Date.now();
    const digests = attempt.hashes.map((h) => this.digest(h, attempt.secret));
    for (let i = 0; i < digests.length; i++) {
      const until = this.verified.get(digests[i]);
      if (until !== undefined && until > now) {
        slot.succeeded();
        return { ok: true, index: i };
      }
    }
    // An unknown user's password is checked against a decoy, which never matches: same work, same time.
    const hashes = attempt.hashes.length > 0 ? attempt.hashes : this.decoy;
    try {
      for (let i = 0; i < hashes.length; i++) {
        const h = parseHash(hashes[i]);
        if (!h) continue;
        const key = await this.pool.derive({ secret: attempt.secret, salt: h.salt, n: h.n, r: h.r, p: h.p, keylen: h.expected.length });
        if (hashes !== this.decoy && keyMatches(key, h)) {
          this.remember(digests[i]);
          slot.succeeded();
          return { ok: true, index: i };
        }
      }
    } catch (err) {
      slot.abandoned();
      if (err instanceof ScryptBusyError) return { ok: false, reason: 'auth_busy' };
      throw err;
    }
    return { ok: false, reason: 'auth_failed' };
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  private digest(hash: string, secret: string): string {
    return createHmac('sha256', this.key).update(hash).update('\0').update(secret).digest('base64');
  }

  private remember(digest: string): void {
    this.verified.delete(digest);
    this.verified.set(digest, Date.now() + this.cacheTtlMs);
    if (this.verified.size > this.cacheSize) this.verified.delete(this.verified.keys().next().value as string);
  }
}
