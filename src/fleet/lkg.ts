/**
 * The last-known-good config: the newest fleet config that passed its health check, kept under the
 * data directory (`<dataDir>/fleet/last-known-good.json`) and written atomically (atomic.ts), so a
 * power cut at any point leaves either the previous good config or the new one, never a broken file.
 *
 * At start the gateway runs `loadEffectiveConfig(fileConfig)`: the stored config when its version is
 * higher than the file's `fleet.configVersion`, else the file. A stored config that is empty,
 * damaged, fails validation (e.g. after a software change) or belongs to another gateway id is
 * ignored with one log line, and the file config runs: start-up never depends on it being intact.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { validateConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { silentLogger } from '../core/log.js';
import { writeFileAtomic } from './atomic.js';
import { canonicalJson } from './canonical.js';

export interface StoredConfig {
  format: 1;
  /** The config version (`fleet.configVersion` inside `config` says the same). */
  version: number;
  /** configHash of the validated config. */
  hash: string;
  /** sha256 of the canonical JSON of `config`: detects a damaged file. */
  checksum: string;
  /** The fleet command that brought it. */
  commandId?: string;
  appliedAt: number;
  /** The config as the operator sent it (defaults are filled in again when it is loaded). */
  config: Record<string, unknown>;
}

export interface EffectiveConfig {
  config: Config;
  source: 'file' | 'last-known-good';
  version: number;
  hash: string;
}

const hashes = new WeakMap<Config, string>();

/**
 * Identity of a running config: sha256 (hex) of the canonical JSON of the validated config,
 * defaults included. Cached per config object (configs are replaced, never edited, on a change):
 * status and state ask for it often.
 */
export function configHash(config: Config): string {
  let h = hashes.get(config);
  if (h === undefined) {
    h = sha256(canonicalJson(config));
    hashes.set(config, h);
  }
  return h;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export function lastKnownGoodPath(dataDir: string): string {
  return join(resolve(dataDir), 'fleet', 'last-known-good.json');
}

/** Version of a running config: the `fleet.configVersion` it carries, 0 without one. */
export function configVersion(config: Config): number {
  return config.fleet?.configVersion ?? 0;
}

/** Reads the stored config; undefined (with a log line saying why) when there is none usable. */
export async function readLastKnownGood(
  dataDir: string,
  logger: Logger,
): Promise<{ stored: StoredConfig; config: Config } | undefined> {
  const file = lastKnownGoodPath(dataDir);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      logger.warn({ file, err: String(err) }, 'last-known-good config cannot be read; ignored');
    return undefined;
  }
  const ignore = (why: string) => {
    logger.warn({ file }, `last-known-good config ignored: ${why}`);
    return undefined;
  };
  if (text.length === 0) return ignore('the file is empty');
  let stored: StoredConfig;
  try {
    stored = JSON.parse(text) as StoredConfig;
  } catch {
    return ignore('the file is not JSON (damaged)');
  }
  if (
    stored?.format !== 1 ||
    typeof stored.version !== 'number' ||
    typeof stored.config !== 'object' ||
    stored.config === null
  ) {
    return ignore('the file does not hold a stored config');
  }
  try {
    if (sha256(canonicalJson(stored.config)) !== stored.checksum)
      return ignore('its checksum does not match (damaged)');
  } catch {
    return ignore('the file is damaged');
  }
  try {
    return { stored, config: validateConfig(stored.config, file) };
  } catch (err) {
    return ignore(`it no longer validates (${(err as Error).message.split('\n').slice(1, 3).join('; ')})`);
  }
}

/** Keeps `config` (as sent) as the last-known-good config; resolves once it is durable. */
export async function writeLastKnownGood(
  dataDir: string,
  entry: { version: number; config: Record<string, unknown>; validated: Config; commandId?: string },
): Promise<void> {
  const file = lastKnownGoodPath(dataDir);
  await mkdir(join(resolve(dataDir), 'fleet'), { recursive: true, mode: 0o700 });
  const stored: StoredConfig = {
    format: 1,
    version: entry.version,
    hash: configHash(entry.validated),
    checksum: sha256(canonicalJson(entry.config)),
    commandId: entry.commandId,
    appliedAt: Date.now(),
    config: entry.config,
  };
  await writeFileAtomic(file, `${JSON.stringify(stored)}\n`);
}

/**
 * The config to start with: the last-known-good one when it is newer than the file config, else
 * the file config. Without a `fleet` section in the file, fleet management is off and the file rules.
 */
export async function loadEffectiveConfig(
  fileConfig: Config,
  dataDir = fileConfig.gateway.dataDir,
  logger: Logger = silentLogger,
): Promise<EffectiveConfig> {
  const fromFile: EffectiveConfig = {
    config: fileConfig,
    source: 'file',
    version: configVersion(fileConfig),
    hash: configHash(fileConfig),
  };
  if (!fileConfig.fleet) return fromFile;
  const lkg = await readLastKnownGood(dataDir, logger);
  if (!lkg) return fromFile;
  if (lkg.config.gateway.id !== fileConfig.gateway.id) {
    logger.warn(
      { stored: lkg.config.gateway.id, file: fileConfig.gateway.id },
      'last-known-good config belongs to another gateway id; ignored',
    );
    return fromFile;
  }
  const version = configVersion(lkg.config);
  if (version <= fromFile.version) {
    logger.info(
      { stored: version, file: fromFile.version },
      'config file is as new as the last-known-good config or newer; running the file',
    );
    return fromFile;
  }
  logger.warn(
    { version, fileVersion: fromFile.version, hash: lkg.stored.hash },
    `running the last-known-good fleet config version ${version}, newer than the config file's fleet.configVersion ${fromFile.version} (to run the file instead, set its fleet.configVersion above ${version})`,
  );
  return { config: lkg.config, source: 'last-known-good', version, hash: configHash(lkg.config) };
}
