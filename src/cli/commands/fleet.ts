/**
 * `sluice fleet sign --key FILE --device ID --type TYPE [--body FILE]`: prints a signed fleet
 * command as one JSON line, for an operator to publish to `<prefix>/<device>/cmd` (QoS 1).
 *
 * `--body` is JSON or YAML (`-` reads stdin). For `config.set`, `--config FILE --version N` builds the
 * body `{"version": N, "config": ...}` from a config file. The key id defaults to the key file's name
 * (`ops-1.key` → `ops-1`), as `sluice keygen` writes it. `--device` may be repeated: one line per
 * device (each command is signed for one device). The body is checked before signing, and a config
 * is validated, so a mistake is caught on the operator's machine rather than refused by the fleet.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { ConfigError, parseConfigText, validateConfig } from '../../config/load.js';
import { COMMAND_TYPES, type CommandType, commandBodies, signCommand } from '../../fleet/command.js';
import { parsePrivateKey } from '../../fleet/keys.js';
import { parseDuration } from '../../core/units.js';
import { parseFlags, required, UsageError } from '../args.js';
import { usageOf } from '../help.js';

const USAGE = usageOf('fleet');

export default async function fleet(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'sign') throw new UsageError(sub ? `unknown subcommand "${sub}"\n${USAGE}` : USAGE);
  const { values } = parseFlags(rest, {
    key: { type: 'string' },
    device: { type: 'string', multiple: true },
    type: { type: 'string' },
    body: { type: 'string' },
    config: { type: 'string' },
    version: { type: 'string' },
    'key-id': { type: 'string' },
    id: { type: 'string' },
    expires: { type: 'string' },
  });
  const keyFile = required(values.key, '--key FILE');
  const devices = values.device ?? [];
  if (devices.length === 0) throw new UsageError('--device ID is required');
  if (values.id && devices.length > 1)
    throw new UsageError('--id names one command; it cannot be used with several --device');
  const type = required(values.type, '--type TYPE');
  if (!(COMMAND_TYPES as string[]).includes(type)) {
    process.stderr.write(`sluice fleet: unknown command type "${type}" (known: ${COMMAND_TYPES.join(', ')})\n`);
    return 1;
  }
  const lifetimeMs = values.expires === undefined ? undefined : parseDuration(values.expires);
  if (lifetimeMs === undefined && values.expires !== undefined)
    throw new UsageError(`--expires "${values.expires}" is not a duration (e.g. 1h, 7d)`);

  let privateKey: ReturnType<typeof parsePrivateKey>;
  try {
    privateKey = parsePrivateKey(await readFile(keyFile, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    process.stderr.write(`sluice fleet: ${keyFile} ${code ? `cannot be read (${code})` : (err as Error).message}\n`);
    return 1;
  }
  const keyId = values['key-id'] ?? basename(keyFile).replace(/\.(key|pem)$/, '');

  let body: unknown = {};
  try {
    if (values.config !== undefined || values.version !== undefined) {
      if (type !== 'config.set') throw new UsageError('--config and --version go with --type config.set');
      if (values.body !== undefined) throw new UsageError('give either --body or --config/--version');
      const file = required(values.config, '--config FILE');
      const version = Number(required(values.version, '--version N'));
      if (!Number.isSafeInteger(version) || version < 1)
        throw new UsageError(`--version "${values.version}" must be a whole number of 1 or more`);
      body = { version, config: parseConfigText(await readText(file), file) };
    } else if (values.body !== undefined) {
      body = parseConfigText(await readText(values.body), values.body === '-' ? 'stdin' : values.body);
    }
  } catch (err) {
    if (err instanceof UsageError) throw err;
    if (err instanceof ConfigError) {
      process.stderr.write(`sluice fleet: ${err.problems.map((p) => `${err.source} ${p}`).join('\n')}\n`);
      return 1;
    }
    process.stderr.write(`sluice fleet: ${(err as Error).message}\n`);
    return 1;
  }

  const check = commandBodies[type as CommandType].safeParse(body);
  if (!check.success) {
    const issue = check.error.issues[0];
    process.stderr.write(
      `sluice fleet: body.${issue.path.join('.')}: ${issue.message.replace(/^Invalid input: /, '')}\n`,
    );
    return 1;
  }
  const lines: string[] = [];
  for (const device of devices) {
    if (type === 'config.set') {
      const problems = configProblems((body as { config: Record<string, unknown> }).config, device);
      if (problems.length) {
        process.stderr.write(`sluice fleet: the config for ${device} is invalid:\n${problems.join('\n')}\n`);
        return 1;
      }
    }
    lines.push(JSON.stringify(signCommand(privateKey, { type, device, body, keyId, id: values.id, lifetimeMs })));
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

async function readText(file: string): Promise<string> {
  if (file !== '-') {
    try {
      return await readFile(file, 'utf8');
    } catch (err) {
      throw new Error(`${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
  }
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** The gateway fills in its own id; validate as it will, so errors show here. */
function configProblems(config: Record<string, unknown>, device: string): string[] {
  const gateway = { ...((config.gateway as Record<string, unknown>) ?? {}) };
  gateway.id ??= device;
  // The gateway refuses a config that would cut it off from the fleet: say so before signing.
  const fleetMissing = config.fleet === undefined ? ['fleet: a config sent by config.set must keep a fleet section, or the gateway could no longer be reached'] : [];
  try {
    validateConfig({ ...config, gateway });
    return fleetMissing;
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems, ...fleetMissing];
    throw err;
  }
}
