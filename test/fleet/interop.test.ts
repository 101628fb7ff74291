/**
 * A command made without Sluice's tools, to the contract's field list (no `device`: valid for any
 * gateway trusting the key), signed by Python's `cryptography` over
 * `json.dumps(sort_keys=True, separators=(",", ":"))`, which escapes non-ASCII characters: the
 * gateway's checks accept it, and refuse it once a field is altered.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { checkCommand } from '../../src/fleet/command.js';
import { generateKeyPair, parsePublicKey } from '../../src/fleet/keys.js';

const PYTHON = '/usr/bin/python3';
const hasCryptography = spawnSync(PYTHON, ['-c', 'import cryptography'], { stdio: 'ignore' }).status === 0;

const SIGNER = `
import base64, json, sys, time
from cryptography.hazmat.primitives.serialization import load_pem_private_key
key = load_pem_private_key(sys.stdin.read().encode(), password=None)
now = int(time.time() * 1000)
cmd = {"id": "py-1", "type": "driver.restart", "issuedAt": now, "expiresAt": now + 3600000,
       "body": {"name": "kühlraum-°C-✓"}, "keyId": "ops-py"}
canonical = json.dumps(cmd, sort_keys=True, separators=(",", ":"))
cmd["sig"] = base64.b64encode(key.sign(canonical.encode())).decode()
print(json.dumps(cmd, ensure_ascii=False))
`;

describe.skipIf(!hasCryptography)('commands signed outside Sluice', () => {
  it('accepts a contract-shaped command signed by Python and refuses it altered', () => {
    const pair = generateKeyPair();
    const line = execFileSync(PYTHON, ['-c', SIGNER], { input: pair.privatePem, encoding: 'utf8' }).trim();
    const ctx = {
      gatewayId: 'gw-01',
      trustedKeys: new Map([['ops-py', parsePublicKey(pair.publicKey)]]),
      now: Date.now(),
      clockSkewMs: 60_000,
      maxLifetimeMs: 86_400_000,
      replayed: () => undefined,
    };
    expect(line).toContain('kühlraum'); // sent as UTF-8, signed escaped
    expect(checkCommand(line, ctx)).toMatchObject({ ok: true, command: { id: 'py-1', type: 'driver.restart', body: { name: 'kühlraum-°C-✓' } } });
    const cmd = JSON.parse(line);
    expect(checkCommand(JSON.stringify({ ...cmd, body: { name: 'kühlraum-°F-✓' } }), ctx)).toMatchObject({ code: 'bad-signature' });
    // With a device named, only that gateway takes it (the signature covers the name).
    expect(checkCommand(line, { ...ctx, gatewayId: 'gw-02' }).ok).toBe(true);
  });
});
