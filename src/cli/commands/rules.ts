/**
 * `sluice rules test -c FILE --input EVENTS.ndjson|EVENTS.csv [--format ndjson|csv] [--quiet]`:
 * replays recorded events through the config's rules and uplink routes and prints what would be
 * dropped, emitted (derived events, alarms) and routed, so a rule is tried before it ships. Exit 0
 * when the replay ran (bad input lines are reported and counted), 1 when the config is invalid or
 * the input cannot be read.
 */
import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { ConfigError, loadConfigFile } from '../../config/load.js';
import { Replay, readEvents } from '../../rules/replay.js';
import { parseFlags, required, UsageError } from '../args.js';

export default async function rules(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'test') throw new UsageError(`unknown subcommand "${sub ?? ''}"; use: sluice rules test -c FILE --input EVENTS`);
  const { values } = parseFlags(rest, {
    config: { type: 'string', short: 'c' },
    input: { type: 'string', short: 'i' },
    format: { type: 'string' },
    quiet: { type: 'boolean', short: 'q', default: false },
  });
  const file = required(values.config, '-c FILE');
  const input = required(values.input, '--input');
  const format = values.format ?? (input.toLowerCase().endsWith('.csv') ? 'csv' : 'ndjson');
  if (format !== 'csv' && format !== 'ndjson') throw new UsageError('--format is ndjson or csv');
  let config: Awaited<ReturnType<typeof loadConfigFile>>;
  try {
    config = await loadConfigFile(file);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.problems.join('\n')}\n`);
      return 1;
    }
    throw err;
  }
  try {
    await access(input);
  } catch (err) {
    process.stderr.write(`sluice rules: cannot read ${input}: ${(err as NodeJS.ErrnoException).code ?? String(err)}\n`);
    return 1;
  }
  const replay = new Replay(config);
  const out = (s: string) => process.stdout.write(`${s}\n`);
  const lines = createInterface({ input: createReadStream(input, 'utf8'), crlfDelay: Number.POSITIVE_INFINITY });
  for await (const r of readEvents(lines, format)) {
    if (r.error !== undefined || !r.event) {
      replay.summary.bad++;
      process.stderr.write(`${input}:${r.line}: ${r.error}; line skipped\n`);
      continue;
    }
    for (const o of replay.offer(r.event, r.line)) {
      if (values.quiet) continue;
      if (o.type === 'dropped') out(`line ${o.line}: dropped ${o.topic} (rule ${o.rules.join(', ')})`);
      else if (o.type === 'emitted') out(`line ${o.line}: ${o.event.kind} ${o.event.topic} ${JSON.stringify(o.event.payload)}`);
    }
  }
  const s = replay.finish();
  const routed = Object.entries(s.routed).map(([name, n]) => `${name} ${n}`).join(', ');
  out(
    `${s.events} events: ${s.dropped} dropped, ${s.derived} derived, ${s.alarms} alarms; routed: ${routed || 'no uplinks'}` +
      `${s.armedAbsences ? `; ${s.armedAbsences} absence(s) armed at the end` : ''}${s.bad ? `; ${s.bad} bad line(s)` : ''}`,
  );
  return 0;
}
