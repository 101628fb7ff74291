/**
 * `sluice keygen --out DIR [--id KEYID]`: makes an Ed25519 key pair for signing fleet commands,
 * `DIR/KEYID.key` (PKCS#8 PEM, mode 0600) and `DIR/KEYID.pub` (SPKI PEM), and prints the
 * `{"keyId", "publicKey"}` entry for `fleet.trustedKeys` as one JSON line. Never overwrites a key.
 */
import { createHash } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateKeyPair } from '../../fleet/keys.js';
import { parseFlags, required, UsageError } from '../args.js';

export default async function keygen(args: string[]): Promise<number> {
  const { values } = parseFlags(args, { out: { type: 'string' }, id: { type: 'string' } });
  const dir = required(values.out, '--out DIR');
  const pair = generateKeyPair();
  // Default id: derived from the key, so two operators' default ids do not collide.
  const keyId = values.id ?? `key-${createHash('sha256').update(pair.publicKey).digest('hex').slice(0, 8)}`;
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(keyId)) {
    throw new UsageError(`--id "${keyId}" must be 1-64 letters, digits, "-", "_" or "." (it names the key files)`);
  }
  const keyFile = join(dir, `${keyId}.key`);
  const pubFile = join(dir, `${keyId}.pub`);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // 'wx': never overwrite an existing private key (it may be the only copy an operator has).
    await writeFile(keyFile, pair.privatePem, { mode: 0o600, flag: 'wx' });
    await chmod(keyFile, 0o600); // the mode given at creation is masked by the umask
    await writeFile(pubFile, pair.publicPem, { mode: 0o644, flag: 'wx' });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'EEXIST'
        ? 'already exists (keygen never overwrites a key; pick another --id)'
        : `cannot be written (${code ?? String(err)})`;
    process.stderr.write(`sluice keygen: ${code === 'EEXIST' ? keyFile : dir} ${why}\n`);
    return 1;
  }
  process.stdout.write(`${JSON.stringify({ keyId, publicKey: pair.publicKey })}\n`);
  return 0;
}
