import type { KeyObject } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { type CheckContext, checkCommand, signCommand } from './command.js';
import { canonicalJson } from './canonical.js';
import { generateKeyPair, parsePrivateKey, parsePublicKey, signBytes } from './keys.js';

let priv: KeyObject;
let other: KeyObject;
let ctx: CheckContext;
const seen = new Set<string>();

beforeAll(() => {
  const pair = generateKeyPair();
  priv = parsePrivateKey(pair.privatePem);
  other = parsePrivateKey(generateKeyPair().privatePem);
  ctx = {
    gatewayId: 'gw-01',
    trustedKeys: new Map([['ops-1', parsePublicKey(pair.publicKey)]]),
    now: Date.now(),
    clockSkewMs: 300_000,
    maxLifetimeMs: 30 * 86_400_000,
    replayed: (id) => (seen.has(id) ? `command id "${id}" was already received (replay)` : undefined),
  };
});

const sign = (over: Partial<Parameters<typeof signCommand>[1]> = {}, key = priv) =>
  signCommand(key, { type: 'ping', device: 'gw-01', keyId: 'ops-1', ...over });

function refusal(raw: unknown) {
  const r = checkCommand(typeof raw === 'string' ? raw : JSON.stringify(raw), ctx);
  if (r.ok) throw new Error('expected a refusal');
  return r;
}

describe('checkCommand', () => {
  it('accepts a well-signed command and parses its body', () => {
    const cmd = sign({ type: 'log.level', body: { level: 'debug', for: '10m' } });
    const r = checkCommand(JSON.stringify(cmd), ctx);
    expect(r).toMatchObject({
      ok: true,
      command: { id: cmd.id, type: 'log.level', body: { level: 'debug', for: 600_000 } },
    });
  });

  it('verifies whatever the key order of the JSON on the wire', () => {
    const cmd = sign({ type: 'uplink.flush', body: { name: 'cloud' } });
    const reordered = Object.fromEntries(Object.entries(cmd).reverse());
    expect(checkCommand(JSON.stringify(reordered, null, 2), ctx).ok).toBe(true);
  });

  it('refuses each kind of bad command with its reason', () => {
    expect(refusal('not json')).toMatchObject({ code: 'malformed', id: null });
    expect(refusal([1, 2])).toMatchObject({ code: 'malformed' });
    const { sig: _s, ...unsigned } = sign();
    expect(refusal(unsigned)).toMatchObject({ code: 'unsigned', id: unsigned.id });
    expect(refusal({ ...sign(), body: { extra: 1 } })).toMatchObject({ code: 'bad-signature' });
    expect(refusal({ ...sign(), device: 'gw-02' }).code).toBe('bad-signature');
    expect(refusal(sign({}, other))).toMatchObject({ code: 'bad-signature' });
    expect(refusal(sign({ keyId: 'nobody' })).error).toMatch(/keyId "nobody" is not in fleet.trustedKeys/);
    expect(refusal(sign({ device: 'gw-02' })).error).toMatch(/for device "gw-02", this gateway is "gw-01"/);
    expect(refusal(sign({ issuedAt: Date.now() - 10_000, lifetimeMs: 5_000 })).error).toMatch(/expired at/);
    expect(refusal(sign({ issuedAt: Date.now() + 3_600_000 })).code).toBe('not-yet-valid');
    expect(refusal(sign({ lifetimeMs: 365 * 86_400_000 })).code).toBe('lifetime');
    expect(refusal(sign({ type: 'reboot' })).error).toMatch(/unknown command type "reboot"/);
    expect(refusal(sign({ type: 'log.level', body: { level: 'loud' } })).error).toMatch(/^body.level: /);
    expect(refusal(sign({ type: 'config.set', body: { version: 0, config: {} } })).code).toBe('bad-body');
    expect(refusal({ ...sign(), issuedAt: 'yesterday' }).error).toMatch(/malformed: issuedAt/);
    expect(refusal({ ...sign(), issuedAt: -1 }).error).toMatch(/malformed: issuedAt/);
    const once = sign();
    seen.add(once.id);
    expect(refusal(once)).toMatchObject({ code: 'replayed' });
  });

  it('accepts a command without a device (the contract field list) and refuses a wrong one', () => {
    const { device: _d, sig: _s, ...noDevice } = sign();
    const signedNoDevice = { ...noDevice, sig: signBytes(priv, canonicalJson(noDevice)) };
    expect(checkCommand(JSON.stringify(signedNoDevice), ctx).ok).toBe(true);
    expect(checkCommand(JSON.stringify(signedNoDevice), { ...ctx, requireDevice: true })).toMatchObject({
      ok: false,
      code: 'wrong-device',
      error: expect.stringMatching(/names no "device"/),
    });
    expect(refusal(sign({ device: 'x' })).code).toBe('wrong-device');
  });

  it('reads issuedAt/expiresAt as epoch ms, epoch seconds or ISO 8601', () => {
    const now = Date.now();
    const spellings: [unknown, unknown][] = [
      [Math.floor(now / 1000), Math.floor(now / 1000) + 600],
      [new Date(now).toISOString(), new Date(now + 600_000).toISOString()],
    ];
    for (const [issuedAt, expiresAt] of spellings) {
      const unsigned = { id: `t-${String(issuedAt)}`, type: 'ping', issuedAt, expiresAt, body: {}, keyId: 'ops-1' };
      const r = checkCommand(JSON.stringify({ ...unsigned, sig: signBytes(priv, canonicalJson(unsigned)) }), ctx);
      expect(r.ok ? r.command.expiresAt - r.command.issuedAt : r.error).toBe(600_000);
    }
    const pair = generateKeyPair();
    const hexKey = Buffer.from(pair.publicKey, 'base64').toString('hex');
    expect(parsePublicKey(hexKey).export({ type: 'spki', format: 'pem' })).toBe(pair.publicPem);
    const hex = sign({ id: 'hex-sig' });
    expect(checkCommand(JSON.stringify({ ...hex, sig: Buffer.from(hex.sig, 'base64').toString('hex') }), ctx).ok).toBe(true);
    expect(refusal({ ...sign(), issuedAt: 'tomorrow' }).error).toMatch(/issuedAt: "tomorrow" is not a time/);
  });

  it('does not call a command from the future when the clock is not set yet (a Pi booting in 1970)', () => {
    const r = checkCommand(JSON.stringify(sign()), { ...ctx, now: 86_400_000 });
    expect(r.ok).toBe(true);
  });
});
