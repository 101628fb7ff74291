/**
 * Republishing on the gateway's own broker (`republish:` on a driver or an analytics rule), so the
 * gateway can be the plant's data bus: Node-RED or Telegraf subscribe to the broker and see driver
 * readings, anomalies and window aggregates, and rule alarms. Rules' derived events go out with the
 * rules' own (rate-limited) `publish:` (src/rules/README.md).
 *
 * - Only events already durable are republished (the gateway calls this after the append).
 * - Loop protection: messages go out through the broker's internal publish (aedes.publish), which
 *   reaches subscribers without passing the client intake path, so they are never ingested again,
 *   whatever `broker.ingest` says.
 * - Fire and forget: a failure is counted and logged once per topic template, never thrown.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { RepublishConfig } from '../core/config-types.js';
import type { EventInput } from '../core/event.js';

export type LocalPublish = (topic: string, payload: string, qos: 0 | 1, retain: boolean) => Promise<void>;

export class Republisher {
  private drivers = new Map<string, RepublishConfig>();
  private analytics = new Map<string, RepublishConfig>();
  private rules = new Map<string, RepublishConfig>();
  published = 0;
  failed = 0;
  private warned = new Set<string>();

  constructor(
    private readonly publish: () => LocalPublish | undefined,
    private readonly logger: Logger,
  ) {}

  configure(config: Config): void {
    this.drivers = new Map();
    for (const d of config.drivers) {
      const r = (d as { republish?: RepublishConfig }).republish;
      if (r) this.drivers.set(d.name, r);
    }
    this.analytics = new Map();
    for (const a of config.analytics) if (a.republish) this.analytics.set(a.name, a.republish);
    this.rules = new Map();
    for (const r of config.rules) if (r.republish) this.rules.set(r.name, r.republish);
  }

  /** A driver's readings, durable. */
  readings(driver: string, events: readonly EventInput[]): void {
    const spec = this.drivers.get(driver);
    if (!spec) return;
    for (const e of events) this.send(spec, e, driver, '');
  }

  /**
   * Durable events of analytics (anomalies, aggregates) or rules (alarms; derived events do not name
   * their rule, `publish:` covers them); each names its rule in its payload.
   */
  derived(events: readonly EventInput[], source: 'analytics' | 'rules'): void {
    const specs = source === 'analytics' ? this.analytics : this.rules;
    if (specs.size === 0) return;
    for (const e of events) {
      if (source === 'rules' && e.kind !== 'alarm') continue;
      const rule = (e.payload as { rule?: unknown } | undefined)?.rule;
      if (typeof rule !== 'string') continue;
      const spec = specs.get(rule);
      if (spec) this.send(spec, e, '', rule);
    }
  }

  private send(spec: RepublishConfig, e: EventInput, driver: string, rule: string): void {
    const publish = this.publish();
    if (!publish) return;
    const topic = fill(spec.topic, e, driver, rule);
    publish(topic, JSON.stringify(e.payload ?? null), spec.qos, spec.retain).then(
      () => this.published++,
      (err: Error) => {
        this.failed++;
        if (this.warned.has(spec.topic)) return;
        this.warned.add(spec.topic);
        this.logger.warn({ err: err.message, topic }, 'republish on the local broker failed (logged once per topic template)');
      },
    );
  }
}

function fill(template: string, e: EventInput, driver: string, rule: string): string {
  if (!template.includes('{')) return template;
  const point = e.topic.slice(e.topic.lastIndexOf('/') + 1);
  return template
    .replaceAll('{topic}', e.topic)
    .replaceAll('{driver}', driver)
    .replaceAll('{point}', point)
    .replaceAll('{rule}', rule)
    .replaceAll('{kind}', e.kind ?? 'reading');
}
