/**
 * Builds the analytics and rules engines from their config sections, wired to the gateway's write
 * path, the local broker and the intake (for events their clocks find). Part of the composition root.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { WritePath } from '../../drivers/write/path.js';
import { AnalyticsEngine } from '../analytics/index.js';
import type { Config } from '../config/schema.js';
import type { EventInput } from '../core/event.js';
import type { DerivedSource } from '../intake/index.js';
import { RulesEngine } from '../rules/index.js';

export interface EngineDeps {
  logger: Logger;
  registry: Registry;
  writes: WritePath;
  /** Publishes on the local broker for an action (`what` names it in the log line of a failure). */
  publisher(what: string): (topic: string, payload: string) => void;
  /** Appends derived events (src/intake `appendDerived`). */
  emit(events: EventInput[], source: DerivedSource): void;
}

export function buildAnalytics(config: Config, deps: EngineDeps): AnalyticsEngine | undefined {
  if (config.analytics.length === 0) return undefined;
  return new AnalyticsEngine(config.analytics, {
    logger: deps.logger.child({ component: 'analytics' }),
    registry: deps.registry,
    publishLocal: deps.publisher('local action'),
    // Anomaly → write: through the same write path (limits, rate limit, audit) as any other requester.
    write: (req) => {
      void deps.writes.write(req);
    },
    // Events the engine's clock finds (a sensor gone silent, a window closed by silence).
    emit: (events) => deps.emit(events, 'analytics'),
    // Detector state survives a clean restart (no new warm-up).
    stateFile: `${config.gateway.dataDir}/analytics-state.json`,
  });
}

export function buildRules(config: Config, deps: EngineDeps): RulesEngine | undefined {
  if (config.rules.length === 0) return undefined;
  return new RulesEngine(config.rules, {
    logger: deps.logger.child({ component: 'rules' }),
    registry: deps.registry,
    publishLocal: deps.publisher('rule action'),
    // Rule → device: the same write path (limits, rate limit, audit) as any other requester.
    writer: {
      write: async (target, value, origin) => {
        const i = target.indexOf('/');
        if (i <= 0) throw new Error(`write target "${target}" is not "<driver>/<point>"`);
        const req = { driver: target.slice(0, i), point: target.slice(i + 1), value, requester: `rules:${origin.rule}`, reason: `rule ${origin.rule}, key ${origin.key}` };
        const r = await deps.writes.write(req);
        if (!r.ok) throw new Error(`${r.outcome}: ${r.error ?? 'refused by the write path'}`);
      },
    },
    // Absences found by the clock.
    emit: (events) => deps.emit(events, 'rules'),
  });
}
