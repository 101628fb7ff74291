/**
 * `sluice passwd`: prints the scrypt hash of a password or bearer token, for
 * `broker.users[].passwordHash` / `tokenHash`. On a terminal it prompts and reads without echo;
 * otherwise it reads one line from stdin. Either way the secret stays out of the shell history and
 * the process list.
 */
import { hashPassword } from '../../auth/password.js';
import { parseFlags } from '../args.js';

export default async function passwd(args: string[]): Promise<number> {
  parseFlags(args, {});
  const secret = process.stdin.isTTY ? await promptHidden('Password: ') : await readStdin();
  if (secret === undefined) return 130;
  if (!secret) {
    process.stderr.write('sluice passwd: no password given (on a terminal, type it at the prompt; else e.g. `printf %s "$PASS" | sluice passwd`)\n');
    return 1;
  }
  process.stdout.write(`${await hashPassword(secret)}\n`);
  return 0;
}

async function readStdin(): Promise<string> {
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  return input.replace(/\r?\n$/, '');
}

/** Reads one line from the terminal in raw mode, echoing nothing; undefined on Ctrl-C or Ctrl-D. */
function promptHidden(prompt: string): Promise<string | undefined> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  stdin.setEncoding('utf8');
  let typed = '';
  return new Promise((resolve) => {
    const done = (value: string | undefined) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      resolve(value);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return done(typed);
        if (ch === '\u0003' || ch === '\u0004') return done(undefined); // Ctrl-C, Ctrl-D
        if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
        else typed += ch;
      }
    };
    stdin.on('data', onData);
  });
}
