/**
 * The gateway: builds the components from a config, wires them, and owns their start/stop order
 * and hot reconfiguration.
 *
 * Start order: ring log (the durable point) → HTTP (so /healthz can explain a failure) → uplinks →
 * analytics → broker and drivers (intake last). Stop order is the reverse: intake stops first, so
 * every event that was acknowledged is in the log before the log closes.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { openRingLog } from '../buffer/index.js';
import type { AppendResult, RingLog } from '../buffer/types.js';
import type { Driver } from '../drivers/driver.js';
import { registerHttpIngest } from '../drivers/http/index.js';
import { createDriver } from '../drivers/index.js';
import { registerDriverMetrics, registerWriteMetrics } from '../drivers/metrics.js';
import type { DriverConfig } from '../drivers/schema.js';
import { WritePath, type WriteRequest, type WriteResult } from '../drivers/write/path.js';
import { createSink } from '../uplink/index.js';
import { type LocalConsumers, registerLocalConsumers } from '../uplink/local/index.js';
import { UplinkRunner } from '../uplink/runner.js';
import { placeCursor } from '../uplink/start-position.js';
import type { UplinkConfig } from '../uplink/schema.js';
import { AnalyticsEngine } from './analytics/index.js';
import { isLoopback } from './auth/origin.js';
import { Logins } from './auth/logins.js';
import { requestGuard } from './auth/request-guard.js';
import { LocalBroker, loginLimits } from './broker/index.js';
import { ComponentSet, sameConfig } from './component-set.js';
import type { Config } from './config/schema.js';
import type { EventInput } from './core/event.js';
import { FleetAgent } from './fleet/index.js';
import { Intake } from './intake/index.js';
import { createLogger } from './core/log.js';
import { AlarmList, asScannable, type Dashboard, LatestReadings, registerDashboard } from './ops/dashboard/index.js';
import { registerRulesRoute } from './ops/dashboard/rules.js';
import { HttpServer } from './core/http-server.js';
import { ConditionTracker } from './ops/condition.js';
import { LivenessProbe } from './ops/liveness.js';
import { GatewayMetrics } from './ops/metrics.js';
import { Republisher } from './ops/republish.js';
import { registerOpsRoutes } from './ops/routes.js';
import { RulesEngine } from './rules/index.js';
import { wherePredicate } from './rules/route.js';
import { VERSION } from './core/version.js';
import { mqttWrites } from './writes/mqtt.js';

export interface GatewayOptions {
  logger?: Logger;
  /** The file the config came from, for status and fleet. */
  configFile?: string;
}

interface UplinkHandle {
  runner: UplinkRunner;
  start(): Promise<void>;
  stop(): Promise<void>;
}

interface DriverHandle {
  driver: Driver;
  start(): Promise<void>;
  stop(): Promise<void>;
}

const COMPONENT_STOP_MS = 3000;

export class Gateway {
  readonly logger: Logger;
  readonly metrics: GatewayMetrics;
  readonly startedAt = Date.now();
  broker?: LocalBroker;
  http?: HttpServer;
  analytics?: AnalyticsEngine;
  rules?: RulesEngine;
  fleet?: FleetAgent;
  private dashboard?: Dashboard;
  private localConsumers?: LocalConsumers;
  private readonly latest = new LatestReadings();
  private alarms?: AlarmList;
  private ringLog?: RingLog;
  private readonly drivers: ComponentSet<DriverConfig, DriverHandle>;
  private readonly uplinks: ComponentSet<UplinkConfig, UplinkHandle>;
  private readonly rejectedByReason: Record<string, number> = {};
  private readonly httpRefusedByReason: Record<string, number> = {};
  private stopping = false;
  private readonly liveness = new LivenessProbe(() => this.ringLog?.healthy ?? false);
  private readonly condition = new ConditionTracker();
  /** `republish:` of drivers and analytics rules, on the local broker. */
  private readonly republisher: Republisher;
  /** Writes to devices, from MQTT, fleet commands and analytics actions alike. */
  readonly writes = new WritePath({
    driver: (name) => this.drivers.get(name)?.driver,
    audit: (event) => this.log.append([event]),
  });
  /** Every password and token check (MQTT, HTTP ingest, HTTP basic auth) shares these limits. */
  private readonly logins: Logins;
  private readonly intake: Intake;

  constructor(
    public config: Config,
    readonly options: GatewayOptions = {},
  ) {
    this.logger = options.logger ?? createLogger(config.gateway.logLevel);
    this.metrics = new GatewayMetrics({ log: () => this.ringLog, brokerClients: () => this.broker?.clientCount });
    this.drivers = new ComponentSet((c) => this.buildDriver(c));
    registerDriverMetrics(this.metrics.registry, () => this.drivers.instances().map((h) => h.driver.health()));
    registerWriteMetrics(this.metrics.registry, () => this.writes.counts);
    this.uplinks = new ComponentSet((c) => this.buildUplink(c));
    this.logins = new Logins(loginLimits(config.broker));
    this.republisher = new Republisher(() => this.broker && ((t, p, qos, retain) => this.broker!.publish(t, p, qos, retain)), this.logger);
    this.republisher.configure(config);
    this.intake = new Intake({
      log: () => this.log,
      logger: this.logger,
      ingested: this.metrics.ingested,
      analytics: () => this.analytics,
      rules: () => this.rules,
      // The dashboard's latest readings see every batch; its alarm list takes anomalies and rule alarms alike.
      inputTaps: [this.latest],
      derivedTaps: [(events, firstSeq) => this.alarms?.observe(events, firstSeq), (events, _firstSeq, source) => this.republisher.derived(events, source)],
      // How long a batch took to be durable; for MQTT batches that is the PUBACK wait.
      durable: (source, n, seconds) => {
        this.metrics.commitSeconds.observe(seconds);
        if (source === 'mqtt') this.metrics.pubackSeconds.observe(seconds, n);
      },
    });
  }

  get id(): string {
    return this.config.gateway.id;
  }

  get log(): RingLog {
    if (!this.ringLog) throw new Error('the gateway is not started');
    return this.ringLog;
  }

  get registry() {
    return this.metrics.registry;
  }

  async start(): Promise<void> {
    const { config } = this;
    await mkdir(config.gateway.dataDir, { recursive: true });
    this.ringLog = await openRingLog({
      dir: config.gateway.dataDir,
      gatewayId: config.gateway.id,
      config: config.buffer,
      logger: this.logger.child({ component: 'buffer' }),
    });
    try {
      await this.dropStaleCursors(config);
      await this.startAlarms(config);
      await this.startHttp(config);
      await this.uplinks
        .reconcile(config.uplinks)
        .catch((err) => this.logger.error({ err: err.message }, 'uplink failed to start'));
      this.analytics = this.buildAnalytics(config);
      this.rules = this.buildRules(config);
      await this.startBroker(config);
      await this.drivers
        .reconcile(config.drivers)
        .catch((err) => this.logger.error({ err: err.message }, 'driver failed to start'));
      // Always: schedules run with or without a fleet section (the agent connects only with one).
      this.fleet = new FleetAgent(this);
      await this.fleet.start();
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.logger.info({ id: this.id, version: VERSION }, 'gateway started');
  }

  /** Stops intake, then delivery, then closes the log; resolves within `deadlineMs`. */
  async stop(deadlineMs = 5000): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const deadline = Date.now() + deadlineMs;
    const within = <T>(p: Promise<T>) =>
      Promise.race([p, new Promise<void>((r) => setTimeout(r, Math.max(0, deadline - Date.now() - 500)).unref())]);
    await within(
      Promise.allSettled([
        this.fleet?.stop(Math.min(2000, deadlineMs / 3)),
        this.broker?.stop(),
        this.drivers.stopAll(),
      ]),
    );
    await within(this.uplinks.stopAll());
    this.analytics?.close();
    this.rules?.close();
    this.dashboard?.close();
    this.localConsumers?.close();
    await this.http?.close();
    await this.ringLog?.close();
    await this.logins.close();
    this.liveness.close();
    this.logger.info('gateway stopped');
  }

  /**
   * The one path into the ring log (src/intake): appends durably, then lets analytics and rules
   * look at the events. Resolves once the input events are durable.
   */
  ingest(events: EventInput[]): Promise<AppendResult> {
    return this.intake.ingest(events);
  }

  countRejected(reason: string, n = 1): void {
    this.rejectedByReason[reason] = (this.rejectedByReason[reason] ?? 0) + n;
    this.metrics.rejected.inc({ reason }, n);
  }

  /**
   * Applies a new config without a restart, touching only what changed: a driver change leaves
   * broker clients connected, an uplink change keeps its cursor (readers are named after uplinks).
   * Throws (after applying what it could) when a component failed to start.
   */
  async reconfigure(next: Config): Promise<void> {
    const prev = this.config;
    if (next.gateway.id !== prev.gateway.id || next.gateway.dataDir !== prev.gateway.dataDir) {
      throw new Error('gateway.id and gateway.dataDir cannot change at run time; restart the gateway to change them');
    }
    if (!sameConfig(next.buffer, prev.buffer)) {
      this.logger.warn('buffer settings changed: they take effect at the next restart');
    }
    this.config = next;
    this.republisher.configure(next);
    if (next.gateway.logLevel !== prev.gateway.logLevel) this.logger.level = next.gateway.logLevel;
    this.logins.configure(loginLimits(next.broker));
    const errors: string[] = [];
    const attempt = async (what: string, fn: () => Promise<void>) => {
      try {
        await fn();
      } catch (err) {
        errors.push(`${what}: ${(err as Error).message}`);
      }
    };
    // The HTTP listener also carries event ingest, whose users and limits come from `broker`.
    if (!sameConfig(next.http, prev.http) || !sameConfig(next.broker, prev.broker)) {
      await attempt('http', async () => {
        this.dashboard?.close();
        this.localConsumers?.close();
        await this.http?.close();
        this.http = undefined;
        await this.startHttp(next);
      });
    }
    await attempt('uplinks', () => this.uplinks.reconcile(next.uplinks));
    await this.dropStaleCursors(next);
    if (!sameConfig(next.analytics, prev.analytics)) {
      const previous = this.analytics;
      previous?.close();
      await attempt('analytics', async () => {
        this.analytics = this.buildAnalytics(next);
        // Unchanged rules keep their detectors' and windows' state (no new warm-up).
        if (previous) this.analytics?.adopt(previous);
      });
    }
    if (!sameConfig(next.rules, prev.rules)) {
      const previous = this.rules;
      previous?.close();
      await attempt('rules', async () => {
        this.rules = this.buildRules(next);
        // Unchanged rules keep their keys and partial matches.
        if (previous) this.rules?.adopt(previous);
      });
    }
    if (!sameConfig(next.broker, prev.broker)) {
      await attempt('broker', async () => {
        await this.broker?.stop();
        this.broker = undefined;
        await this.startBroker(next);
      });
    }
    await attempt('drivers', () => this.drivers.reconcile(next.drivers));
    if (errors.length) throw new Error(errors.join('; '));
  }

  /**
   * Forgets the cursors of uplinks that are no longer configured. A cursor nobody advances would
   * hold every event back under `onFull: reject` (no loss means no release) and make the log look
   * behind. Local consumers (`local:NAME`) keep theirs: they are removed through their own API.
   */
  private async dropStaleCursors(config: Config): Promise<void> {
    const wanted = new Set(config.uplinks.map((u) => u.name));
    for (const { name } of this.log.readerStats()) {
      if (wanted.has(name) || name.startsWith('local:')) continue;
      await this.log.dropReader(name);
      this.logger.info({ uplink: name }, 'cursor of a removed uplink dropped');
    }
  }

  /** Restarts one driver (fleet `driver.restart`). */
  async restartDriver(name: string): Promise<void> {
    const handle = this.drivers.get(name);
    if (!handle) throw new Error(`no running driver named "${name}"`);
    await handle.stop();
    await handle.start();
  }

  /** Writes a point of a driver through the write path (fleet `device.write`). */
  writePoint(req: WriteRequest): Promise<WriteResult> {
    return this.writes.write(req);
  }

  /** Sends every uplink's backlog now, outside transmit windows (fleet `uplink.flush`). */
  flushUplinks(name?: string): void {
    for (const h of this.uplinks.instances()) if (!name || h.runner.status().name === name) h.runner.flush();
  }

  /** `GET /healthz`, the watchdog: liveness only (alive, event loop responsive, ring log writable). */
  health(): { ok: boolean; reasons: string[]; eventLoopMaxDelayMs: number } {
    return this.liveness.check();
  }

  /** `GET /api/status` (contract "HTTP"). */
  status() {
    const buffer = this.ringLog?.stats();
    const rejected = Object.values(this.rejectedByReason).reduce((a, b) => a + b, 0);
    const analytics = this.analytics?.status();
    const uplinks = this.uplinks.instances().map((h) => h.runner.status());
    const drivers = this.drivers.instances().map((h) => h.driver.health());
    const listening = this.broker?.listening ?? false;
    return {
      gateway: {
        id: this.id,
        version: VERSION,
        startedAt: this.startedAt,
        uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
        configFile: this.options.configFile ?? null,
      },
      health: this.health(),
      condition: this.condition.judge({ brokerEnabled: this.config.broker.enabled, brokerListening: listening, buffer: buffer ?? null, uplinks, drivers }),
      ingest: { received: this.intake.received, rejected, rejectedByReason: { ...this.rejectedByReason } },
      broker: {
        clients: this.broker?.clientCount ?? 0,
        listening,
        listeners: this.broker?.addresses ?? [],
      },
      http: this.http
        ? { refusedConnections: this.http.refusedConnections, refusedByReason: { ...this.httpRefusedByReason } }
        : null,
      buffer: buffer ?? null,
      uplinks,
      drivers,
      anomalies: {
        total: analytics?.total ?? 0,
        byDetector: analytics?.byDetector ?? {},
        recent: analytics?.recent ?? [],
      },
      rules: this.rules?.status() ?? [],
      fleet: this.fleet?.status() ?? null,
      writes: { ...this.writes.counts },
    };
  }

  private async startHttp(config: Config): Promise<void> {
    if (!config.http.enabled) return;
    const logger = this.logger.child({ component: 'http' });
    const http = new HttpServer(logger);
    registerOpsRoutes(http, this);
    this.dashboard = registerDashboard(
      http,
      {
        status: () => this.status(),
        recentReadings: () => this.latest.recentReadings(),
        topicRates: (n) => this.latest.topicRates(n),
        log: () => asScannable(this.ringLog),
        alarms: this.alarms,
      },
      { logger },
    );
    http.guard = requestGuard({
      listenerHost: config.http.host,
      auth: config.http.auth,
      allowAnonymous: config.http.allowAnonymous,
      trustLoopback: config.http.trustLoopback,
      allowedHosts: config.http.allowedHosts,
      countRefused: (reason) => {
        this.httpRefusedByReason[reason] = (this.httpRefusedByReason[reason] ?? 0) + 1;
      },
      logins: this.logins,
      logger,
      countLoginRefused: (reason) => this.countRejected(reason),
    });
    registerRulesRoute(http, () => this.rules?.status() ?? []);
    if (config.http.consumers.enabled) {
      this.localConsumers = registerLocalConsumers(http, this.log, { config: config.http.consumers, logger, registry: this.registry });
    }
    registerHttpIngest(http, {
      ingest: (events) => this.ingest(events),
      users: config.broker.users,
      maxPayloadBytes: config.broker.maxPayloadBytes,
      // Behind a reverse proxy on the device every client is loopback: not trusting loopback means no anonymous posts.
      anonymous: config.broker.allowAnonymous ?? (isLoopback(config.http.host) && config.http.trustLoopback),
      countRejected: (reason, n) => this.countRejected(reason, n),
      logins: this.logins,
    });
    try {
      await http.listen(config.http.host, config.http.port, config.http);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
        throw new Error(
          `port ${config.http.port} on ${config.http.host} is already in use; move the HTTP listener with http.port in the config`,
        );
      }
      throw err;
    }
    this.http = http;
  }

  /**
   * The dashboard's alarm list: acknowledgements read back, and the newest alarms refilled from the
   * log in the background (a bounded scan; the list fills while the gateway starts).
   */
  private async startAlarms(config: Config): Promise<void> {
    const alarms = new AlarmList({ file: `${config.gateway.dataDir}/dashboard-acks.json`, unitOf: (t) => this.latest.unit(t) });
    await alarms.load();
    const log = asScannable(this.ringLog);
    if (log) {
      alarms.seed(log).catch((err) => this.logger.warn({ err: (err as Error).message }, 'dashboard: alarms not read back from the log'));
    }
    this.alarms = alarms;
  }

  private async startBroker(config: Config): Promise<void> {
    if (!config.broker.enabled) return;
    const logger = this.logger.child({ component: 'broker' });
    const broker: LocalBroker = new LocalBroker(config.broker, {
      logger,
      ingest: (events) => this.ingest(events),
      countRejected: (reason, n) => this.countRejected(reason, n),
      intercept: mqttWrites(this.writes, (topic, payload): Promise<void> => broker.publish(topic, payload, 1), logger),
      logins: this.logins,
      sessionOwnersFile: join(config.gateway.dataDir, 'broker-sessions.json'),
    });
    await broker.start();
    this.broker = broker;
  }

  private buildAnalytics(config: Config): AnalyticsEngine | undefined {
    if (config.analytics.length === 0) return undefined;
    return new AnalyticsEngine(config.analytics, {
      logger: this.logger.child({ component: 'analytics' }),
      registry: this.registry,
      publishLocal: this.publisher('local action'),
      // Anomaly → write: through the same write path (limits, rate limit, audit) as any other requester.
      write: (req) => {
        void this.writes.write(req);
      },
      // Events the engine's clock finds (a sensor gone silent, a window closed by silence).
      emit: (events) => this.intake.appendDerived(events),
      // Detector state survives a clean restart (no new warm-up).
      stateFile: `${config.gateway.dataDir}/analytics-state.json`,
    });
  }

  private buildRules(config: Config): RulesEngine | undefined {
    if (config.rules.length === 0) return undefined;
    return new RulesEngine(config.rules, {
      logger: this.logger.child({ component: 'rules' }),
      registry: this.registry,
      publishLocal: this.publisher('rule action'),
      // Rule → device: the same write path (limits, rate limit, audit) as any other requester.
      writer: {
        write: async (target, value, origin) => {
          const i = target.indexOf('/');
          if (i <= 0) throw new Error(`write target "${target}" is not "<driver>/<point>"`);
          const req = { driver: target.slice(0, i), point: target.slice(i + 1), value, requester: `rules:${origin.rule}`, reason: `rule ${origin.rule}, key ${origin.key}` };
          const r = await this.writes.write(req);
          if (!r.ok) throw new Error(`${r.outcome}: ${r.error ?? 'refused by the write path'}`);
        },
      },
      // Absences found by the clock.
      emit: (events) => this.intake.appendDerived(events, 'rules'),
    });
  }

  /** Publishing on the local broker for an action: fire and forget, a failure logged. */
  private publisher(what: string): (topic: string, payload: string) => void {
    return (topic, payload) => {
      this.broker?.publish(topic, payload).catch((err) => this.logger.warn({ err: err.message, topic }, `${what} not published`));
    };
  }

  private async buildDriver(config: DriverConfig): Promise<DriverHandle> {
    const driver = await createDriver(config);
    const logger = this.logger.child({ component: 'driver', driver: config.name });
    return {
      driver,
      start: () =>
        driver.start({
          gatewayId: this.id,
          logger,
          dataDir: this.config.gateway.dataDir,
          emit: async (events) => {
            await this.ingest(events);
            this.republisher.readings(config.name, events);
          },
        }),
      stop: () => driver.stop(Date.now() + COMPONENT_STOP_MS),
    };
  }

  private async buildUplink(config: UplinkConfig): Promise<UplinkHandle> {
    const logger = this.logger.child({ component: 'uplink', uplink: config.name });
    const sink = await createSink(config, { gatewayId: this.id, logger, dataDir: this.config.gateway.dataDir });
    // No stored cursor: a new uplink, which starts where its `start:` says. The cursor is placed and
    // persisted before the runner exists, so nothing is sent before it (uplink/start-position.ts).
    const isNew = !this.log.readerStats().some((r) => r.name === config.name);
    const reader = this.log.reader(config.name, readerOptions(config));
    if (isNew && config.start !== 'oldest') {
      const skipped = await placeCursor(reader, config.start, this.log.stats().lastSeq);
      logger.info({ start: config.start, skipped }, 'new uplink: starting cursor placed');
    }
    const runner = new UplinkRunner({
      config,
      sink,
      reader,
      gatewayId: this.id,
      logger,
      registry: this.registry,
      dataDir: this.config.gateway.dataDir,
      where: config.where ? wherePredicate(config.where, config.name, this.registry) : undefined,
    });
    return {
      runner,
      start: async () => runner.start(),
      stop: () => runner.stop(Date.now() + COMPONENT_STOP_MS),
    };
  }
}

function readerOptions(config: UplinkConfig) {
  const c = config as { liveFirst?: boolean; backlogShare?: number };
  return { liveFirst: c.liveFirst, backlogShare: c.backlogShare };
}
