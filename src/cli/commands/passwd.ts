/**
 * `sluice passwd`: prints the scrypt hash of a password or bearer token read from stdin (one line),
 * for `broker.users[].passwordHash` / `tokenHash`. Reading stdin keeps the secret out of the
 * shell history and the process list.
 */
import { hashPassword } from '../../auth/password.js';
import { parseFlags } from '../args.js';

export default async function passwd(args: string[]): Promise<number> {
  parseFlags(args, {});
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const secret = input.replace(/\r?\n$/, '');
  if (!secret) {
    process.stderr.write('sluice passwd: no password on stdin (e.g. `printf %s "$PASS" | sluice passwd`)\n');
    return 1;
  }
  process.stdout.write(`${await hashPassword(secret)}\n`);
  return 0;
}
