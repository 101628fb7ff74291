/**
 * Password and token hashes for broker users: scrypt with a random salt, stored as
 * `scrypt$N$r$p$<salt b64>$<hash b64>`. Verification is constant-time. `verifyPassword` runs scrypt
 * on the libuv pool (for the CLI and tests); the gateway checks logins through `Logins`
 * (logins.ts), which runs scrypt on its own thread so a login storm cannot stall ring log writes.
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';

const N = 16384;
const R = 8;
const P = 1;
const KEYLEN = 32;

function scrypt(secret: string, salt: Buffer, n: number, r: number, p: number, keylen: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCb(secret, salt, keylen, { N: n, r, p, maxmem: 256 * n * r + 1024 * 1024 }, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

export async function hashPassword(secret: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scrypt(secret, salt, N, R, P, KEYLEN);
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/**
 * A hash no secret matches, with the parameters `hashPassword` uses: checked in place of an unknown
 * user's, so a login for a name that does not exist costs the same scrypt work as a wrong password
 * (the time of a refusal does not tell which usernames exist).
 */
export function decoyHash(): string {
  return `scrypt$${N}$${R}$${P}$${randomBytes(16).toString('base64')}$${Buffer.alloc(KEYLEN).toString('base64')}`;
}

export interface ParsedHash {
  n: number;
  r: number;
  p: number;
  salt: Buffer;
  expected: Buffer;
}

/** The parameters of a stored hash, or undefined when it is not one this code makes. */
export function parseHash(stored: string): ParsedHash | undefined {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return undefined;
  const [n, r, p] = parts.slice(1, 4).map(Number);
  // Refuse absurd parameters from a config instead of allocating gigabytes.
  if (!(n >= 2 && n <= 2 ** 20 && r >= 1 && r <= 32 && p >= 1 && p <= 16)) return undefined;
  const expected = Buffer.from(parts[5], 'base64');
  if (expected.length === 0) return undefined;
  return { n, r, p, salt: Buffer.from(parts[4], 'base64'), expected };
}

/** Constant-time comparison of a derived key with the stored one. */
export function keyMatches(actual: Buffer, parsed: ParsedHash): boolean {
  return actual.length === parsed.expected.length && timingSafeEqual(actual, parsed.expected);
}

export async function verifyPassword(secret: string, stored: string): Promise<boolean> {
  const h = parseHash(stored);
  if (!h) return false;
  return keyMatches(await scrypt(secret, h.salt, h.n, h.r, h.p, h.expected.length), h);
}
