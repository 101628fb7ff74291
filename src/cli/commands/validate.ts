/** `sluice validate -c FILE`: exit 0, or exit 1 printing one `path: problem` line per error. */
import { ConfigError, loadConfigFile } from '../../config/load.js';
import { parseFlags, required } from '../args.js';

export default async function validate(args: string[]): Promise<number> {
  const { values } = parseFlags(args, { config: { type: 'string', short: 'c' } });
  const file = required(values.config, '-c FILE');
  try {
    const config = await loadConfigFile(file);
    process.stdout.write(
      `${file}: ok (gateway ${config.gateway.id}; ${config.drivers.length} driver(s), ${config.uplinks.length} uplink(s), ${config.analytics.length} analytics rule(s), ${config.rules.length} rule(s))\n`,
    );
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.problems.join('\n')}\n`);
      return 1;
    }
    throw err;
  }
}
