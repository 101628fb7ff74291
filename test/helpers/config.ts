/** What the config validation refuses, as a list, for tests of config problems. */
import { ConfigError, type LineOf, validateConfig } from '../../src/config/load.js';

/** The problems validateConfig reports for `raw` (with YAML lines when `lineOf` is given); [] when it is valid. */
export function configProblems(raw: unknown, lineOf?: LineOf): string[] {
  try {
    validateConfig(raw, 'config', lineOf);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}
