/**
 * `sluice <command> --help`: each command's usage, its options and the environment variables it
 * reads. Kept beside the command table (main.ts) so a new command or option is documented in one
 * place; the README's CLI section repeats it for readers without a gateway at hand.
 */
const ENV_LOG = `  SLUICE_LOG_LEVEL   override gateway.logLevel (trace|debug|info|warn|error|fatal)
  SLUICE_LOG_FORMAT  json: JSON lines on a terminal too (the default elsewhere);
                     journald: each line prefixed with its syslog priority (journalctl -p works)`;

export const HELP: Record<string, string> = {
  run: `usage: sluice run [-c FILE]

Runs the gateway in the foreground until SIGTERM or SIGINT; SIGHUP reloads the config file.

options:
  -c, --config FILE  the config (YAML or JSON); default $SLUICE_CONFIG, else built-in defaults
environment:
  SLUICE_CONFIG      the config file when -c is not given
${ENV_LOG}`,
  validate: `usage: sluice validate -c FILE

Checks a config file without starting anything; exit 0 valid, 1 invalid (every problem listed).

options:
  -c, --config FILE  the config to check`,
  config: `usage: sluice config --print-defaults | --effective -c FILE

  --print-defaults    every setting with its default, as YAML
  --effective         the config the gateway would run from FILE: \${...} references replaced,
                      defaults filled in, secrets shown as (redacted)
  -c, --config FILE   the config for --effective`,
  status: `usage: sluice status [--url URL] [--json]

Prints a running gateway's condition, uplinks with their lag, and the ring log.
Exit code: 0 healthy, 3 degraded, 4 unreachable.

options:
  --url URL   the gateway's HTTP address (default $SLUICE_URL, else http://127.0.0.1:8080)
  --json      print /api/status as JSON
environment:
  SLUICE_URL  the gateway's HTTP address when --url is not given`,
  buffer: `usage: sluice buffer stats|tail|export --data DIR [-n N] [--out FILE] [--from SEQ] [--to SEQ] [--json]

Reads a stopped gateway's ring log.

  stats           events, bytes, seqs and reader cursors
  tail            the last N events (-n, default 10)
  export          events as NDJSON (the wire event format), to --out FILE or stdout

options:
  --data DIR      the gateway's dataDir
  -n N            events for tail
  --out FILE      export target (default stdout)
  --from SEQ      first seq to export
  --to SEQ        last seq to export
  --json          stats as JSON`,
  detect: `usage: sluice detect -i FILE.csv -o OUT.csv [-d DETECTOR] [--contributions]

Replays a CSV (a timestamp column and one or more value columns; , ; or tab, decimal commas)
through a detector offline and writes each row's score and anomaly flag.

options:
  -i, --input FILE       the CSV to replay (a header row names the columns)
  -o, --output FILE      where to write the scored rows
  -d, --detector NAME    auto (default), zscore, ewma, threshold, rate-of-change, flatline, gap,
                         spike-and-dip, change-point; multivariate for several columns
  --contributions        with multivariate: each variable's share of the score`,
  rules: `usage: sluice rules test -c FILE -i EVENTS.ndjson|EVENTS.csv [--format ndjson|csv] [-q]

Replays recorded events through the config's rules in event time and prints what they derive.

options:
  -c, --config FILE   the config whose rules to run
  -i, --input FILE    events: NDJSON (one event per line) or CSV
  --format F          ndjson or csv (default: from the file name)
  -q, --quiet         only the summary`,
  keygen: `usage: sluice keygen --out DIR [--id KEYID]

Makes an Ed25519 key pair for signing fleet commands: DIR/KEYID.key (private, mode 0600) and
DIR/KEYID.pub; prints the {keyId, publicKey} entry for fleet.trustedKeys.

options:
  --out DIR    where to write the key files
  --id KEYID   the key's id (default derived from the key)`,
  fleet: `usage: sluice fleet sign --key FILE --device ID --type TYPE [--body FILE | --config FILE --version N] [--key-id ID] [--id ID] [--expires 7d]

Prints a signed fleet command (one JSON line) to publish on <prefix>/<device>/cmd.

options:
  --key FILE      the private key from sluice keygen
  --device ID     the gateway id the command is for (repeat for several: one command each)
  --type TYPE     ping, status, config.get, config.set, driver.restart, uplink.flush, log.level, device.write
  --body FILE     the command body (JSON)
  --config FILE   with --type config.set: the config to send, and --version N its version
  --key-id ID     the key's id (default: the key file's name without .key)
  --id ID         the command id (default: random)
  --expires D     how long the command stays valid (default 7d; e.g. 10m, 1h)`,
  opcua: `usage: sluice opcua browse --endpoint opc.tcp://HOST:PORT [--node ID] [--depth N] [--security-mode None|Sign|SignAndEncrypt] [--security-policy P] [--username U --password-file F] [--pki DIR | --data DIR] [--accept-unknown-certificate] [--max-nodes N] [--json]

Prints an OPC UA server's address space (NodeIds, browse names, types, values) to pick points.

environment:
  SLUICE_DATA_DIR  where the certificate store is without --pki or --data (default /var/lib/sluice)`,
  passwd: `usage: sluice passwd

Hashes a password or token for broker.users (passwordHash, tokenHash). On a terminal it prompts
without echo; otherwise it reads the secret from stdin (e.g. printf %s "$PASS" | sluice passwd).`,
  version: `usage: sluice version

Prints the version (also: sluice --version).`,
};

/** A command's one-line usage (the first line of its help), for its usage errors. */
export function usageOf(command: string): string {
  return HELP[command].split('\n')[0];
}

/** True when the command's arguments ask for help (before a `--` that ends the options). */
export function wantsHelp(args: string[]): boolean {
  for (const a of args) {
    if (a === '--') return false;
    if (a === '--help' || a === '-h') return true;
  }
  return false;
}
