/**
 * The gateway's HTTP listener and everything mounted on it: the ops routes, the dashboard, the
 * rules view, local consumers of the log and event ingest, behind one request guard. Part of the
 * composition root: it wires features together and is used by src/gateway.ts only.
 */
import type { Logger } from 'pino';
import type { RingLog } from '../../buffer/types.js';
import { registerHttpIngest } from '../../drivers/http/index.js';
import { type LocalConsumers, registerLocalConsumers } from '../../uplink/local/index.js';
import type { Logins } from '../auth/logins.js';
import { isLoopback } from '../auth/origin.js';
import { requestGuard } from '../auth/request-guard.js';
import type { Config } from '../config/schema.js';
import type { EventInput } from '../core/event.js';
import { HttpServer } from '../core/http-server.js';
import { type AlarmList, asScannable, type Dashboard, type LatestReadings, registerDashboard } from '../ops/dashboard/index.js';
import { registerRulesRoute } from '../ops/dashboard/rules.js';
import { type OpsGateway, registerOpsRoutes } from '../ops/routes.js';
import type { RulesEngine } from '../rules/index.js';

export interface HttpDeps {
  logger: Logger;
  /** Health, status and metrics for the ops routes (and status for the dashboard). */
  gateway: OpsGateway;
  /** The open ring log. */
  log: RingLog;
  latest: LatestReadings;
  alarms?: AlarmList;
  rules(): RulesEngine | undefined;
  logins: Logins;
  ingest(events: EventInput[]): Promise<unknown>;
  countRejected(reason: string, n?: number): void;
  countRefused(reason: string): void;
}

export interface HttpParts {
  http: HttpServer;
  dashboard: Dashboard;
  localConsumers?: LocalConsumers;
}

/** Builds and starts the listener; undefined when `http.enabled` is false. */
export async function startHttp(config: Config, deps: HttpDeps): Promise<HttpParts | undefined> {
  if (!config.http.enabled) return undefined;
  const logger = deps.logger.child({ component: 'http' });
  const http = new HttpServer(logger);
  registerOpsRoutes(http, deps.gateway);
  const dashboard = registerDashboard(
    http,
    {
      status: () => deps.gateway.status(),
      recentReadings: () => deps.latest.recentReadings(),
      topicRates: (n) => deps.latest.topicRates(n),
      log: () => asScannable(deps.log),
      alarms: deps.alarms,
    },
    { logger },
  );
  http.guard = requestGuard({
    listenerHost: config.http.host,
    auth: config.http.auth,
    allowAnonymous: config.http.allowAnonymous,
    trustLoopback: config.http.trustLoopback,
    allowedHosts: config.http.allowedHosts,
    countRefused: deps.countRefused,
    logins: deps.logins,
    logger,
    countLoginRefused: (reason) => deps.countRejected(reason),
  });
  registerRulesRoute(http, () => deps.rules()?.status() ?? []);
  const localConsumers = config.http.consumers.enabled
    ? registerLocalConsumers(http, deps.log, { config: config.http.consumers, logger, registry: deps.gateway.registry })
    : undefined;
  registerHttpIngest(http, {
    ingest: deps.ingest,
    users: config.broker.users,
    maxPayloadBytes: config.broker.maxPayloadBytes,
    // Behind a reverse proxy on the device every client is loopback: not trusting loopback means no anonymous posts.
    anonymous: config.broker.allowAnonymous ?? (isLoopback(config.http.host) && config.http.trustLoopback),
    countRejected: deps.countRejected,
    logins: deps.logins,
  });
  try {
    await http.listen(config.http.host, config.http.port, config.http);
  } catch (err) {
    dashboard.close();
    localConsumers?.close();
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new Error(
        `port ${config.http.port} on ${config.http.host} is already in use; move the HTTP listener with http.port in the config`,
      );
    }
    throw err;
  }
  return { http, dashboard, localConsumers };
}
