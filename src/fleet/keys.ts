/**
 * Ed25519 keys for fleet commands (node:crypto, no native add-on). A trusted public key is written
 * in the config as the base64 of its 32 raw bytes (what `sluice keygen` prints), as 64 hex digits,
 * or as a PEM `PUBLIC KEY` block. Private keys stay with the operator as PKCS#8 PEM files (mode 0600).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from 'node:crypto';

/** The fixed DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32 raw key bytes follow it. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export interface KeyPair {
  privatePem: string;
  publicPem: string;
  /** Base64 of the 32 raw public key bytes: the `publicKey` of a `fleet.trustedKeys` entry. */
  publicKey: string;
}

export function generateKeyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    publicKey: rawPublicKey(publicKey).toString('base64'),
  };
}

function rawPublicKey(key: KeyObject): Buffer {
  const der = key.export({ type: 'spki', format: 'der' });
  return der.subarray(der.length - 32);
}

/** Parses a trusted key (raw base64 or PEM); throws a one-sentence error when it is not an Ed25519 public key. */
export function parsePublicKey(text: string): KeyObject {
  const t = text.trim();
  let key: KeyObject;
  try {
    if (t.startsWith('-----BEGIN')) {
      key = createPublicKey(t);
    } else {
      if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(t)) throw new Error('not base64');
      const raw = /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, 'hex') : Buffer.from(t, 'base64');
      if (raw.length !== 32) throw new Error('not 32 bytes');
      key = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
    }
  } catch {
    throw new Error('is not an Ed25519 public key (base64 of 32 bytes, as `sluice keygen` prints, or a PEM block)');
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`is a ${key.asymmetricKeyType} key, not Ed25519`);
  return key;
}

/** Parses an operator's private key file (PKCS#8 PEM); throws a one-sentence error otherwise. */
export function parsePrivateKey(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    throw new Error('is not a PEM private key (make one with `sluice keygen`)');
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`is a ${key.asymmetricKeyType} key, not Ed25519`);
  return key;
}

/** Base64 Ed25519 signature of `message`. */
export function signBytes(key: KeyObject, message: string): string {
  return sign(null, Buffer.from(message, 'utf8'), key).toString('base64');
}

/** Verifies a signature given as base64 (standard or URL-safe) or as 128 hex digits. */
export function verifyBytes(key: KeyObject, message: string, signature: string): boolean {
  const sig = /^[0-9a-fA-F]{128}$/.test(signature) ? Buffer.from(signature, 'hex') : Buffer.from(signature, 'base64');
  if (sig.length !== 64) return false;
  try {
    return verify(null, Buffer.from(message, 'utf8'), key, sig);
  } catch {
    return false;
  }
}
