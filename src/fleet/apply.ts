/**
 * `config.set`: the apply / health-check / rollback state machine.
 *
 *   prepare ─ invalid ─────────────────────────────────────▶ refused (nothing changed)
 *      │ version not above the running one ────────────────▶ refused (same version + same config: no-op, ok)
 *   dry run ─ a port taken, a serial path missing ─────────▶ refused (nothing changed)
 *      │ same config, higher version ──────────────────────▶ version recorded, kept, ok (no-op)
 *   reconfigure(next) ─ throws ─┐
 *      │                        ├─▶ reconfigure(previous) ─▶ rolled back, reported (ok: false)
 *   health check ─ timeout ─────┤   (gateway stopping ──────▶ interrupted: nothing kept, nothing undone)
 *      │ healthy                │
 *   write last-known-good ─ fails ┘
 *      └──────────────────────────────────────────────────▶ applied (ok: true)
 *
 * The last-known-good file is written only after the health check passed, atomically, so a power
 * cut at any point boots either the previous good config or the new healthy one.
 */
import type { Logger } from 'pino';
import { ConfigError, validateConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { dryRun } from './dry-run.js';
import type { FleetGateway } from './gateway-port.js';
import { type HealthReport, waitHealthy } from './health.js';
import { configHash, configVersion, writeLastKnownGood } from './lkg.js';

/** `interrupted`: the gateway stopped during the health check; the config was not kept, so the next start runs the last-known-good one. */
export type ApplyOutcome = 'applied' | 'noop' | 'rolled-back' | 'refused' | 'interrupted';

export interface ApplyReport {
  outcome: ApplyOutcome;
  ok: boolean;
  /** One sentence when not ok. */
  error?: string;
  version: number;
  previousVersion: number;
  /** Hash of the config running afterwards. */
  configHash: string;
  applyError?: string;
  health?: HealthReport;
  rollbackError?: string;
  /** How long each phase took, ms. */
  timings?: { applyMs: number; healthMs?: number; keepMs?: number; rollbackMs?: number };
}

export interface ApplyDeps {
  gateway: FleetGateway;
  logger: Logger;
  /** Brings the fleet's own state (connection, keys, schedules) in line with the config now running. */
  adopt(config: Config): Promise<void>;
  fleetConnected(): boolean;
  /** Aborted when the gateway stops: the apply ends without keeping or rolling back anything. */
  signal?: AbortSignal;
}

/**
 * The config a `config.set` asks for, completed the way the gateway runs it: `gateway.id` and
 * `gateway.dataDir` come from the running config when absent (one body can be signed for a whole
 * group), and `fleet.configVersion` is the command's version. Throws ConfigError with every problem.
 */
export function prepareConfig(
  raw: Record<string, unknown>,
  running: Config,
  version: number,
): { config: Config; raw: Record<string, unknown> } {
  const problems: string[] = [];
  const next = structuredClone(raw);
  const gateway = isObject(next.gateway) ? next.gateway : {};
  if (gateway.id !== undefined && gateway.id !== running.gateway.id) {
    problems.push(
      `gateway.id: "${String(gateway.id)}" differs from this gateway's id "${running.gateway.id}" (an id cannot change remotely)`,
    );
  }
  if (gateway.dataDir !== undefined && gateway.dataDir !== running.gateway.dataDir) {
    problems.push(
      'gateway.dataDir: cannot change with config.set (the ring log lives there); change it in the config file and restart',
    );
  }
  next.gateway = { ...gateway, id: running.gateway.id, dataDir: running.gateway.dataDir };
  if (!isObject(next.fleet)) {
    problems.push(
      'fleet: a config sent by config.set must keep a fleet section, or this gateway could no longer be reached',
    );
  } else {
    if (next.fleet.configVersion !== undefined && next.fleet.configVersion !== version) {
      problems.push(
        `fleet.configVersion: ${String(next.fleet.configVersion)} differs from the command's version ${version}`,
      );
    }
    next.fleet = { ...next.fleet, configVersion: version };
  }
  let config: Config | undefined;
  try {
    config = validateConfig(next, 'config.set');
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
  }
  if (problems.length || !config) throw new ConfigError([...new Set(problems)], 'config.set');
  return { config, raw: next };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The hash a config would have at another version: tells "same config, new version" apart. */
function hashAtVersion(config: Config, version: number): string {
  return configHash({ ...config, fleet: config.fleet ? { ...config.fleet, configVersion: version } : undefined });
}

export async function applyConfigSet(
  deps: ApplyDeps,
  commandId: string,
  body: { version: number; config: Record<string, unknown> },
): Promise<ApplyReport> {
  const { gateway, logger } = deps;
  const prev = gateway.config;
  const previousVersion = configVersion(prev);
  const prevHash = configHash(prev);
  const { version } = body;
  const refuse = (error: string): ApplyReport => ({
    outcome: 'refused',
    ok: false,
    error,
    version,
    previousVersion,
    configHash: prevHash,
  });

  let next: Config;
  let raw: Record<string, unknown>;
  try {
    ({ config: next, raw } = prepareConfig(body.config, prev, version));
  } catch (err) {
    const problems = (err as ConfigError).problems ?? [(err as Error).message];
    const shown = problems.slice(0, 5).join('; ') + (problems.length > 5 ? `; and ${problems.length - 5} more` : '');
    return refuse(`config version ${version} is invalid: ${shown}`);
  }
  const nextHash = configHash(next);
  if (version === previousVersion && nextHash === prevHash) {
    return { outcome: 'noop', ok: true, version, previousVersion, configHash: prevHash };
  }
  if (version <= previousVersion) {
    return refuse(`config version ${version} is not above the running version ${previousVersion}`);
  }
  const problems = await dryRun(next, prev);
  if (problems.length) return refuse(`config version ${version} failed its dry run: ${problems.join('; ')}`);
  if (deps.signal?.aborted) return refuse('the gateway is stopping');

  const unchanged = hashAtVersion(next, previousVersion) === prevHash;
  const r = await hotApply(deps, prev, next, {
    checkHealth: !unchanged,
    keep: () => writeLastKnownGood(gateway.config.gateway.dataDir, { version, config: raw, validated: next, commandId }),
  });
  const { applyError, health, rollbackError, timings } = r;
  if (r.outcome === 'interrupted') {
    // The gateway is stopping: neither keep an unproven config nor reconfigure a gateway on its way down.
    logger.warn({ version }, 'fleet config apply interrupted by shutdown; the last-known-good config runs at the next start');
    return {
      outcome: 'interrupted',
      ok: false,
      error: `config version ${version} was interrupted by a shutdown before it proved healthy; it was not kept`,
      version,
      previousVersion,
      configHash: configHash(gateway.config),
      applyError,
      health,
      timings,
    };
  }
  if (r.outcome === 'applied') {
    logger.info(
      { version, hash: nextHash, commandId, unchanged },
      unchanged ? 'fleet config version recorded (config unchanged)' : 'fleet config applied and healthy',
    );
    return { outcome: unchanged ? 'noop' : 'applied', ok: true, version, previousVersion, configHash: nextHash, health, timings };
  }
  const why = r.why;
  logger.warn({ version, previousVersion, why }, 'fleet config rolled back');
  if (rollbackError) logger.error({ rollbackError }, 'rolling back the fleet config met errors');
  return {
    outcome: 'rolled-back',
    ok: false,
    error: `config version ${version} was rolled back to version ${previousVersion}: ${why}${rollbackError ? `; the rollback met errors (${rollbackError})` : ''}`,
    version,
    previousVersion,
    configHash: configHash(gateway.config),
    applyError,
    health,
    rollbackError,
    timings,
  };
}

export interface HotApplyResult {
  outcome: 'applied' | 'rolled-back' | 'interrupted';
  /** Why it was rolled back, one sentence. */
  why?: string;
  applyError?: string;
  health?: HealthReport;
  rollbackError?: string;
  timings: NonNullable<ApplyReport['timings']>;
}

/** Apply and rollback take turns per gateway: a reload never interleaves with a `config.set`. */
const turns = new WeakMap<object, Promise<unknown>>();

function inTurn<T>(gateway: object, fn: () => Promise<T>): Promise<T> {
  const before = turns.get(gateway) ?? Promise.resolve();
  const run = before.then(fn, fn);
  turns.set(gateway, run.catch(() => {}));
  return run;
}

/**
 * The one hot-apply path (fleet `config.set`, SIGHUP reload): reconfigure to `next`, check health,
 * `keep` it (the last-known-good file, or nothing for a reload) or roll back to `prev`. `next` is
 * already validated and dry-run by the caller.
 */
export function hotApply(
  deps: ApplyDeps,
  prev: Config,
  next: Config,
  opts: { checkHealth: boolean; keep(): Promise<void> },
): Promise<HotApplyResult> {
  return inTurn(deps.gateway, async () => {
    const { gateway } = deps;
    const since = Date.now();
    const receivedBefore = gateway.status().ingest?.received ?? 0;
    let applyError: string | undefined;
    let health: HealthReport | undefined;
    try {
      await gateway.reconfigure(next);
      await deps.adopt(next);
    } catch (err) {
      applyError = (err as Error).message;
    }
    const timings: HotApplyResult['timings'] = { applyMs: Date.now() - since };
    if (!applyError && opts.checkHealth) {
      health = await waitHealthy(gateway, next, {
        timeoutMs: next.fleet?.healthTimeout ?? 30_000,
        since,
        fleetConnected: deps.fleetConnected,
        signal: deps.signal,
        receivedBefore,
      });
      timings.healthMs = health.elapsedMs;
    }
    if (deps.signal?.aborted) return { outcome: 'interrupted', applyError, health, timings };
    let keepError: string | undefined;
    const keepStart = Date.now();
    if (!applyError && (health?.healthy ?? true)) {
      try {
        await opts.keep();
        return { outcome: 'applied', health, timings: { ...timings, keepMs: Date.now() - keepStart } };
      } catch (err) {
        keepError = `it could not be kept as last-known-good (${(err as Error).message})`;
      }
    }
    // Roll back: the previous config was running well enough to bring this change in.
    const why = applyError
      ? `applying it failed (${applyError})`
      : (keepError ?? `it was not healthy within ${next.fleet?.healthTimeout ?? 30_000} ms: ${health?.reasons.join('; ')}`);
    let rollbackError: string | undefined;
    const rollbackStart = Date.now();
    try {
      await gateway.reconfigure(prev);
    } catch (err) {
      rollbackError = (err as Error).message;
    }
    try {
      await deps.adopt(prev);
    } catch (err) {
      rollbackError = [rollbackError, (err as Error).message].filter(Boolean).join('; ');
    }
    timings.rollbackMs = Date.now() - rollbackStart;
    return { outcome: 'rolled-back', why, applyError, health, rollbackError, timings };
  });
}
