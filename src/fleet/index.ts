/**
 * The fleet agent: signed commands over MQTT, the retained state, and the schedules.
 *
 * Guarantees:
 * - Every message on `<prefix>/<id>/cmd` gets one result on `<prefix>/<id>/cmd/result`
 *   (`{"id", "ok", "error"?, "result"?}`). A refused command (see command.ts for the checks) changes
 *   nothing; an accepted one is remembered in the replay store, durably, before it runs.
 * - Commands run one at a time, in arrival order; at most `fleet.maxQueuedCommands` wait, more are
 *   refused as busy (memory stays bounded whatever is published to the topic).
 * - The retained `<prefix>/<id>/state` says `online` with the running `configVersion`, `configHash`
 *   and the last config.set outcome; the broker replaces it with `offline` (last will) when the
 *   gateway vanishes; a clean stop publishes `offline` itself.
 * - Schedules run whether or not a fleet section is configured (state/status actions need one).
 *
 * The gateway constructs one agent and calls `start()` after its own start and `stop()` before its
 * own stop; `reconfigured()` after a config change made outside fleet commands.
 */

import type { KeyObject } from 'node:crypto';
import { join, resolve } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { VERSION } from '../core/version.js';
import { type ApplyReport, applyConfigSet } from './apply.js';
import { canonicalJson } from './canonical.js';
import { GatewayCommands } from './commands.js';
import {
  type CheckResult,
  type CommandBody,
  type CommandType,
  checkCommand,
  commandBodies,
  type VerifiedCommand,
} from './command.js';
import { type FleetConnection, fleetConnection } from './connection.js';
import type { FleetGateway } from './gateway-port.js';
import { parsePublicKey } from './keys.js';
import { configHash, configVersion } from './lkg.js';
import { type FleetMetrics, fleetMetrics } from './metrics.js';
import { ReplayStore } from './replay.js';
import { SerialQueue } from './queue.js';
import { Scheduler } from './schedules.js';
import type { FleetStatus, LastApply } from './status.js';

export type { FleetStatus } from './status.js';
import { OBSOLETE_SCHEDULE_ACTIONS, type ScheduleConfig } from './schema.js';

export { loadEffectiveConfig } from './lkg.js';

/** A config with every driver and rule still fits; anything larger is refused before parsing. */
const MAX_COMMAND_BYTES = 1024 * 1024;

export class FleetAgent {
  private readonly logger: Logger;
  private readonly metrics: FleetMetrics;
  private readonly scheduler: Scheduler;
  private client?: MqttClient;
  private connection?: FleetConnection;
  private replay?: ReplayStore;
  private trustedKeys = new Map<string, KeyObject>();
  private readonly queue: SerialQueue<Buffer>;
  private lastApply: LastApply | null = null;
  private readonly commands: GatewayCommands;
  private applying = false;
  private refusalLog = { minute: 0, n: 0 };
  private stopSignal = new AbortController();
  /** Config version and hash named by the current connection's last will. */
  private willOf?: string;
  private readonly counts = { ok: 0, refused: 0, failed: 0 };
  private started = false;
  private schedules?: string;

  constructor(
    private readonly gateway: FleetGateway,
    logger?: Logger,
  ) {
    this.logger = (logger ?? gateway.logger).child({ component: 'fleet' });
    this.metrics = fleetMetrics(gateway.registry);
    this.scheduler = new Scheduler((s) => this.runSchedule(s), this.logger);
    this.commands = new GatewayCommands(gateway);
    this.queue = new SerialQueue(
      (p) => this.handle(p),
      (err) => this.logger.error({ err: err.message }, 'fleet command handling failed'),
    );
  }

  private get config(): Config {
    return this.gateway.config;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.stopSignal = new AbortController();
    const dataDir = resolve(this.config.gateway.dataDir);
    this.replay = await ReplayStore.open(
      join(dataDir, 'fleet', 'replay.json'),
      this.logger,
      4096,
      this.config.fleet?.clockSkew,
    );
    try {
      await this.adopt(this.config);
    } catch (err) {
      // Start-up never fails on the fleet: the gateway runs, the fleet connection is reported down.
      this.logger.error({ err: (err as Error).message }, 'fleet connection not started');
    }
  }

  /** Publishes `offline`, closes the connection, stops the schedules. Waits for a running command to finish (bounded). */
  async stop(deadlineMs = 3000): Promise<void> {
    if (!this.started) return;
    this.started = false;
    this.scheduler.stop();
    this.schedules = undefined;
    this.commands.stop();
    this.queue.clear();
    this.stopSignal.abort();
    await Promise.race([this.queue.idle, sleep(deadlineMs / 2)]);
    await this.disconnect(deadlineMs / 2);
  }

  /** Re-reads the running config after a change made outside fleet commands (e.g. a reload). */
  async reconfigured(): Promise<void> {
    if (this.started) await this.adopt(this.config);
  }

  status(): FleetStatus {
    return {
      enabled: !!this.config.fleet,
      connected: this.client?.connected ?? false,
      configVersion: configVersion(this.config),
      configHash: configHash(this.config),
      lastApply: this.lastApply,
      queued: this.queue.length,
      commands: { ...this.counts },
      schedules: this.scheduler.status(),
    };
  }

  /** Aligns keys, schedules and the connection with `config` (the one now running). */
  private async adopt(config: Config): Promise<void> {
    const keys = new Map<string, KeyObject>();
    for (const k of config.fleet?.trustedKeys ?? []) keys.set(k.keyId, parsePublicKey(k.publicKey));
    this.trustedKeys = keys;
    this.metrics.configVersion.set(configVersion(config));
    const schedules = canonicalJson(config.schedules);
    if (schedules !== this.schedules) {
      this.scheduler.set(config.schedules);
      for (const sc of config.schedules) {
        const why = Object.hasOwn(OBSOLETE_SCHEDULE_ACTIONS, sc.action) ? OBSOLETE_SCHEDULE_ACTIONS[sc.action] : undefined;
        if (why) this.logger.warn({ schedule: sc.name }, `schedule "${sc.name}": action ${sc.action} does nothing (${why}); remove it`);
      }
    }
    this.schedules = schedules;
    const next = fleetConnection(config, this.statePayload('offline'));
    const sameLink = next?.key === this.connection?.key && next?.topics.state === this.connection?.topics.state;
    if (sameLink && this.client && this.willOf === willKey(config)) {
      this.publishState();
      return;
    }
    if (sameLink && this.client) {
      // Same broker, new config version: the broker holds the will given at CONNECT, so reconnect
      // (a clean DISCONNECT: no will fires, and the persistent session keeps queued commands) to have
      // the will name the version now running.
      const old = this.client;
      this.client = undefined;
      await Promise.race([old.endAsync().catch(() => {}), sleep(1000)]);
      old.end(true);
    } else {
      await this.disconnect(2000);
    }
    if (next) this.connect(next, willKey(config));
  }

  private connect(conn: FleetConnection, will: string): void {
    this.connection = conn;
    this.willOf = will;
    const client = mqtt.connect(conn.url, conn.options);
    this.client = client;
    client.on('connect', (ack) => {
      if (this.client !== client) {
        // A client this agent already let go of (two with one client id would take over each other's session).
        client.end(true);
        return;
      }
      this.metrics.connected.set(1);
      this.logger.info(
        { url: conn.url, sessionPresent: ack.sessionPresent, topic: conn.topics.cmd },
        'fleet connection up',
      );
      client.subscribe(conn.topics.cmd, { qos: 1 }, (err) => {
        if (err) this.logger.error({ err: err.message }, 'fleet command subscription failed');
      });
      this.publishState();
    });
    client.on('close', () => {
      if (this.client === client) this.metrics.connected.set(0);
    });
    client.on('error', (err) => this.logger.debug({ err: err.message }, 'fleet connection error'));
    client.on('message', (topic, payload) => {
      if (topic === conn.topics.cmd && this.client === client) this.enqueue(payload);
    });
  }

  private async disconnect(deadlineMs: number): Promise<void> {
    const client = this.client;
    const conn = this.connection;
    this.client = undefined;
    this.connection = undefined;
    if (!client || !conn) return;
    this.metrics.connected.set(0);
    if (!client.connected) {
      // Nothing to say goodbye to (e.g. a dead host after a bad config): drop it at once.
      client.end(true);
      return;
    }
    const said = await Promise.race([
      client.publishAsync(conn.topics.state, this.statePayload('offline'), { qos: 1, retain: true }).then(
        () => true,
        () => false,
      ),
      sleep(deadlineMs / 2).then(() => false),
    ]);
    if (!said) {
      // Closing without DISCONNECT makes the broker publish the last will: the state still ends up offline.
      client.end(true);
      return;
    }
    await Promise.race([client.endAsync().catch(() => {}), sleep(deadlineMs / 2)]);
    client.end(true);
  }

  private enqueue(payload: Buffer): void {
    // An empty message is how a retained message is cleared from the topic: nothing to answer.
    if (payload.length === 0) return;
    if (payload.length > MAX_COMMAND_BYTES) {
      this.finish(null, { ok: false, id: null, code: 'malformed', error: `command is larger than ${MAX_COMMAND_BYTES} bytes` });
      return;
    }
    const max = this.config.fleet?.maxQueuedCommands ?? 100;
    if (this.queue.push(payload, max)) return;
    const id = peekId(payload);
    this.finish(null, { ok: false, id, code: 'busy', error: `${max} commands are already waiting; send it again later` });
  }

  private async handle(payload: Buffer): Promise<void> {
    const fleet = this.config.fleet;
    if (!fleet || !this.replay) return;
    const replay = this.replay;
    const check = checkCommand(payload, {
      gatewayId: this.config.gateway.id,
      trustedKeys: this.trustedKeys,
      now: Date.now(),
      clockSkewMs: fleet.clockSkew,
      maxLifetimeMs: fleet.maxCommandLifetime,
      replayed: (id, issuedAt) => replay.check(id, issuedAt),
      lastKnownTime: replay.lastKnownTime,
      requireDevice: fleet.requireDevice,
    });
    if (!check.ok) {
      this.finish(null, check);
      return;
    }
    const cmd = check.command;
    try {
      await replay.record(cmd.id, cmd.issuedAt, cmd.expiresAt);
    } catch (err) {
      // Without a durable record the command could be replayed after a restart: do not run it.
      this.reply(
        cmd,
        false,
        `the command could not be recorded against replay (${(err as Error).message}); nothing was changed`,
      );
      this.count(cmd.type, 'failed');
      return;
    }
    this.logger.info({ id: cmd.id, type: cmd.type, keyId: cmd.keyId }, 'fleet command accepted');
    try {
      const result = await this.execute(cmd);
      if (cmd.type === 'config.set') {
        const report = result as ApplyReport;
        this.reply(cmd, report.ok, report.error, report);
        this.count(cmd.type, report.ok ? 'ok' : report.outcome === 'refused' ? 'refused' : 'failed');
      } else {
        this.reply(cmd, true, undefined, result);
        this.count(cmd.type, 'ok');
      }
    } catch (err) {
      this.reply(cmd, false, (err as Error).message);
      this.count(cmd.type, 'failed');
    }
  }

  private finish(_cmd: null, refusal: Extract<CheckResult, { ok: false }>): void {
    // Anyone who can publish to the topic can make refusals: log at most 10 a minute (all are counted).
    const minute = Math.floor(Date.now() / 60_000);
    if (minute !== this.refusalLog.minute) this.refusalLog = { minute, n: 0 };
    if (++this.refusalLog.n <= 10) this.logger.warn({ id: refusal.id, reason: refusal.code }, `fleet command refused: ${refusal.error}`);
    this.metrics.refused.inc({ reason: refusal.code });
    this.count('unknown', 'refused');
    this.publishResult({ id: refusal.id, ok: false, error: refusal.error });
  }

  private count(type: string, outcome: 'ok' | 'refused' | 'failed'): void {
    this.counts[outcome]++;
    this.metrics.commands.inc({ type, outcome });
  }

  private reply(cmd: VerifiedCommand, ok: boolean, error?: string, result?: unknown): void {
    this.publishResult({ id: cmd.id, ok, ...(error ? { error } : {}), ...(result !== undefined ? { result } : {}) });
  }

  private publishResult(doc: { id: string | null; ok: boolean; error?: string; result?: unknown }): void {
    const client = this.client;
    const topics = this.connection?.topics;
    if (!client || !topics) return;
    client.publish(topics.result, JSON.stringify(doc), { qos: 1 }, (err) => {
      if (err) this.logger.warn({ id: doc.id, err: err.message }, 'fleet result not published');
    });
  }

  /** Runs an accepted command (also used by schedules, whose commands come from the trusted config). */
  private async execute(cmd: Pick<VerifiedCommand, 'id' | 'type' | 'body'>): Promise<unknown> {
    const g = this.gateway;
    switch (cmd.type) {
      case 'config.set': {
        // The state keeps saying the running version until the outcome is known.
        this.applying = true;
        const report = await applyConfigSet(
          {
            gateway: g,
            logger: this.logger,
            adopt: (c) => this.adopt(c),
            fleetConnected: () => this.client?.connected ?? false,
            signal: this.stopSignal.signal,
          },
          cmd.id,
          cmd.body as CommandBody<'config.set'>,
        ).finally(() => {
          this.applying = false;
        });
        this.metrics.applies.inc({ outcome: report.outcome });
        this.lastApply = {
          commandId: cmd.id,
          version: report.version,
          outcome: report.outcome,
          error: report.error,
          rollback: report.outcome === 'rolled-back' ? (report.rollbackError ?? 'ok') : undefined,
          at: Date.now(),
        };
        this.publishState();
        return report;
      }
      default:
        return this.commands.run(cmd);
    }
  }

  private async runSchedule(s: ScheduleConfig): Promise<void> {
    switch (s.action) {
      case 'state':
        this.publishState();
        return;
      case 'status': {
        const topics = this.connection?.topics;
        if (!this.client || !topics) return;
        await this.client.publishAsync(topics.status, JSON.stringify(this.gateway.status()), { qos: 1 });
        return;
      }
      default:
        if (Object.hasOwn(OBSOLETE_SCHEDULE_ACTIONS, s.action)) return;
        await this.execute({
          id: `schedule:${s.name}`,
          type: s.action as CommandType,
          body: commandBodies[s.action as CommandType].parse(s.body ?? {}),
        });
    }
  }

  private statePayload(status: 'online' | 'offline'): string {
    const config = this.config;
    return JSON.stringify({
      status,
      gateway: config.gateway.id,
      softwareVersion: VERSION,
      configVersion: configVersion(config),
      configHash: configHash(config),
      lastApply: this.lastApply,
      ts: Date.now(),
    });
  }

  private publishState(): void {
    const client = this.client;
    const topics = this.connection?.topics;
    if (!client?.connected || !topics || this.applying) return;
    client.publish(topics.state, this.statePayload('online'), { qos: 1, retain: true }, (err) => {
      if (err) this.logger.warn({ err: err.message }, 'fleet state not published');
    });
  }
}

function willKey(config: Config): string {
  return `${configVersion(config)}:${configHash(config)}`;
}

function peekId(payload: Buffer): string | null {
  try {
    const id = (JSON.parse(payload.toString('utf8')) as { id?: unknown }).id;
    return typeof id === 'string' && id.length <= 128 ? id : null;
  } catch {
    return null;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
