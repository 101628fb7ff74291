/**
 * The `sluice` command line (README "Command line"). Each command lives in
 * src/cli/commands/<name>.ts and is loaded only when used, so `sluice validate` does not pay for
 * loading LevelDB, aedes or the cloud SDKs. Exit codes: 0 ok, 1 bad input or failed check, 2 usage.
 */
import { UsageError } from './args.js';
import { HELP, wantsHelp } from './help.js';

const COMMANDS: Record<string, { module: string; summary: string }> = {
  run: { module: './commands/run.js', summary: 'run the gateway (-c FILE, else $SLUICE_CONFIG, else defaults)' },
  validate: { module: './commands/validate.js', summary: 'check a config file (-c FILE)' },
  config: { module: './commands/config.js', summary: 'print the defaults (--print-defaults) or the effective config (--effective -c FILE)' },
  status: { module: './commands/status.js', summary: "print the running gateway's state (--url URL)" },
  buffer: {
    module: './commands/buffer.js',
    summary: "inspect a stopped gateway's ring log: stats | tail | export (--data DIR)",
  },
  detect: {
    module: './commands/detect.js',
    summary: 'replay a timestamp,value CSV through a detector (--input, --output, --detector)',
  },
  rules: {
    module: './commands/rules.js',
    summary: 'rules test -c FILE --input EVENTS.ndjson|.csv: replay events through the rules offline',
  },
  keygen: {
    module: './commands/keygen.js',
    summary: 'make an Ed25519 key pair for signing fleet commands (--out DIR, --id KEYID)',
  },
  fleet: { module: './commands/fleet.js', summary: 'fleet sign: print a signed fleet command' },
  opcua: {
    module: './commands/opcua.js',
    summary: 'opcua browse: print an OPC UA server\'s address space (--endpoint URL [--node ID] [--depth N])',
  },
  passwd: {
    module: './commands/passwd.js',
    summary: 'hash a password or token for broker.users (prompts on a terminal, else reads stdin)',
  },
  version: { module: '', summary: 'print the version' },
};

export type CommandMain = (args: string[]) => Promise<number>;

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return `usage: sluice <command> [options]\n\n${Object.entries(COMMANDS)
    .map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`)
    .join('\n')}\n\n\`sluice <command> --help\` describes a command's options and environment variables.\n`;
}

async function printVersion(): Promise<number> {
  const { VERSION } = await import('../core/version.js');
  process.stdout.write(`${VERSION}\n`);
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === 'help' && rest[0] && HELP[rest[0]]) {
    process.stdout.write(`${HELP[rest[0]]}\n`);
    return 0;
  }
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  if (name === '--version' || name === '-v' || (name === 'version' && !wantsHelp(rest))) return printVersion();
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`sluice: unknown command "${name}"\n${usage()}`);
    return 2;
  }
  if (wantsHelp(rest)) {
    process.stdout.write(`${HELP[name] ?? `usage: sluice ${name}`}\n`);
    return 0;
  }
  const mod = (await import(command.module)) as { default: CommandMain };
  try {
    return await mod.default(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`sluice ${name}: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}
