/**
 * `sluice config --print-defaults`: every setting with its default, as YAML (a starting point, and
 * the answer to "what does it do when I leave this out").
 * `sluice config --effective -c FILE`: the config the gateway would run from FILE, after `${...}`
 * references and defaults, with every secret shown as `(redacted)`.
 */
import { stringify } from 'yaml';
import { ConfigError, loadConfigFile, validateConfig } from '../../config/load.js';
import { redactConfig } from '../../config/redact.js';
import { parseFlags, UsageError } from '../args.js';

export default async function config(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    'print-defaults': { type: 'boolean', default: false },
    effective: { type: 'boolean', default: false },
    config: { type: 'string', short: 'c' },
  });
  if (values['print-defaults'] === values.effective) throw new UsageError('give one of --print-defaults or --effective -c FILE');
  if (values['print-defaults']) {
    process.stdout.write(stringify(redactConfig(validateConfig({}))));
    return 0;
  }
  if (!values.config) throw new UsageError('--effective needs -c FILE');
  try {
    process.stdout.write(stringify(redactConfig(await loadConfigFile(values.config))));
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.problems.join('\n')}\n`);
      return 1;
    }
    throw err;
  }
}
