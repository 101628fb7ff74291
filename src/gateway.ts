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
import { registerDriverMetrics, registerWriteMetrics } from '../drivers/metrics.js';
import type { DriverConfig } from '../drivers/schema.js';
import { WritePath, type WriteRequest, type WriteResult } from '../drivers/write/path.js';
import type { UplinkConfig } from '../uplink/schema.js';
import type { AnalyticsEngine } from './analytics/index.js';
import { Logins } from './auth/logins.js';
import { LocalBroker, loginLimits } from './broker/index.js';
import { ComponentSet, sameConfig } from './component-set.js';
import type { Config } from './config/schema.js';
import type { EventInput } from './core/event.js';
import { SparkplugIngest } from './sparkplug/ingest.js';
import { FleetAgent } from './fleet/index.js';
import { Intake } from './intake/index.js';
import { createLogger } from './core/log.js';
import { AlarmList, asScannable, type Dashboard, LatestReadings } from './ops/dashboard/index.js';
import type { HttpServer } from './core/http-server.js';
import type { LocalConsumers } from '../uplink/local/index.js';
import { ConditionTracker } from './ops/condition.js';
import { LivenessProbe } from './ops/liveness.js';
import { GatewayMetrics } from './ops/metrics.js';
import { Republisher } from './ops/republish.js';
import type { RulesEngine } from './rules/index.js';
import { VERSION } from './core/version.js';
import { mqttWrites } from './writes/mqtt.js';
import { buildDriver, buildUplink, type DriverHandle, type UplinkHandle } from './wiring/components.js';
import { buildAnalytics, buildRules, type EngineDeps } from './wiring/engines.js';
import { startHttp } from './wiring/http.js';

export interface GatewayOptions {
  logger?: Logger;
  /** The file the config came from, for status and fleet. */
  configFile?: string;
}

export class Gateway {
  readonly logger: Logger;
  readonly metrics: GatewayMetrics;
  readonly startedAt = Date.now();
  broker?: LocalBroker;
  http?: HttpServer;
  analytics?: AnalyticsEngine;
  rules?: RulesEngine;
  fleet?: FleetAgent;
  private sparkplug?: SparkplugIngest;
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
    this.drivers = new ComponentSet((c) => buildDriver(c, { ...this.componentDeps(), ingest: (events) => this.ingest(events), republish: (driver, events) => this.republisher.readings(driver, events) }));
    registerDriverMetrics(this.metrics.registry, () => this.drivers.instances().map((h) => h.driver.health()));
    registerWriteMetrics(this.metrics.registry, () => this.writes.counts);
    this.uplinks = new ComponentSet((c) => buildUplink(c, { ...this.componentDeps(), log: this.log }), { runDisabled: true });
    this.logins = new Logins(loginLimits(config.broker));
    this.republisher = new Republisher(() => this.broker && ((t, p, qos, retain) => this.broker!.publish(t, p, qos, retain)), this.logger);
    this.republisher.configure(config);
    this.intake = new Intake({
      log: () => this.log,
      logger: this.logger,
      ingested: this.metrics.ingested,
      skipped: this.metrics.analyticsSkipped,
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
      this.analytics = buildAnalytics(config, this.engineDeps());
      this.rules = buildRules(config, this.engineDeps());
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
        this.analytics = buildAnalytics(next, this.engineDeps());
        // Unchanged rules keep their detectors' and windows' state (no new warm-up).
        if (previous) this.analytics?.adopt(previous);
      });
    }
    if (!sameConfig(next.rules, prev.rules)) {
      const previous = this.rules;
      previous?.close();
      await attempt('rules', async () => {
        this.rules = buildRules(next, this.engineDeps());
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

  /** `GET /api/status` (README "HTTP"). */
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
    const parts = await startHttp(config, {
      logger: this.logger,
      gateway: this,
      log: this.log,
      latest: this.latest,
      alarms: this.alarms,
      rules: () => this.rules,
      logins: this.logins,
      ingest: (events) => this.ingest(events),
      countRejected: (reason, n) => this.countRejected(reason, n),
      countRefused: (reason) => {
        this.httpRefusedByReason[reason] = (this.httpRefusedByReason[reason] ?? 0) + 1;
      },
    });
    this.http = parts?.http;
    this.dashboard = parts?.dashboard;
    this.localConsumers = parts?.localConsumers;
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
    // Sparkplug publishes become metric events here, where the broker's publishes enter intake.
    const sparkplug = (this.sparkplug ??= new SparkplugIngest(() => this.config.sparkplug, (t, p) => this.broker?.publish(t, p, 1), logger, this.metrics.registry));
    const broker: LocalBroker = new LocalBroker(config.broker, {
      logger,
      ingest: (events) => this.ingest(sparkplug.expand(events)),
      countRejected: (reason, n) => this.countRejected(reason, n),
      intercept: mqttWrites(this.writes, (topic, payload): Promise<void> => broker.publish(topic, payload, 1), logger),
      logins: this.logins,
      sessionOwnersFile: join(config.gateway.dataDir, 'broker-sessions.json'),
    });
    await broker.start();
    this.broker = broker;
  }

  private componentDeps() {
    return { gatewayId: this.id, logger: this.logger, dataDir: this.config.gateway.dataDir, registry: this.registry };
  }

  private engineDeps(): EngineDeps {
    const { logger, registry, writes } = this;
    return { logger, registry, writes, publisher: (what) => this.publisher(what), emit: (events, source) => this.intake.appendDerived(events, source) };
  }

  /** Publishing on the local broker for an action: fire and forget, a failure logged. */
  private publisher(what: string): (topic: string, payload: string) => void {
    return (topic, payload) => {
      this.broker?.publish(topic, payload).catch((err) => this.logger.warn({ err: err.message, topic }, `${what} not published`));
    };
  }
}
