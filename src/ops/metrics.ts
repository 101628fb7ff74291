/**
 * The gateway's Prometheus metrics (contract "HTTP": names prefixed `sluice_`). One registry per
 * gateway (never prom-client's global one), so tests can run several gateways in one process.
 * Gauges are read from the components at scrape time rather than updated on the hot path; counts
 * the components keep themselves are exposed as counters set at scrape time (`_total` is only ever
 * a counter). Latency histograms are FastHistograms: no allocation per observation.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { RingLog } from '../../buffer/types.js';
import { VERSION } from '../core/version.js';
import { FAST_BUCKETS, FastHistogram } from '../core/histogram.js';

export interface MetricSources {
  log(): RingLog | undefined;
  /** Clients connected to the local broker; undefined while it is off. */
  brokerClients(): number | undefined;
}

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly ingested: Counter<'source'>;
  readonly rejected: Counter<'reason'>;
  /** Ring log append to durable, per append call. */
  readonly commitSeconds: FastHistogram;
  /** MQTT publishes handed to the log until durable (their PUBACK goes out then), per publish. */
  readonly pubackSeconds: FastHistogram;
  readonly analyticsSkipped: Counter<'rule' | 'reason'>;

  constructor(sources: MetricSources) {
    const registers = [this.registry];
    const log = sources.log;
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'sluice_build_info',
      help: 'Always 1; the labels say which build runs.',
      labelNames: ['version', 'node'],
      registers,
    }).set({ version: VERSION, node: process.version }, 1);
    this.ingested = new Counter({
      name: 'sluice_ingest_events_total',
      help: 'Events accepted into the ring log, by source.',
      labelNames: ['source'],
      registers,
    });
    this.rejected = new Counter({
      name: 'sluice_ingest_rejected_total',
      help: 'Input refused, by reason (oversize, acl_publish, auth_failed, buffer_full, ...).',
      labelNames: ['reason'],
      registers,
    });
    this.commitSeconds = FastHistogram.on(
      this.registry,
      'sluice_buffer_commit_seconds',
      'Time from an append to the ring log until its events were durable (fsynced), per append.',
      FAST_BUCKETS,
    );
    this.pubackSeconds = FastHistogram.on(
      this.registry,
      'sluice_broker_puback_seconds',
      'Time from the broker handing MQTT publishes to the ring log until they were durable, when the PUBACK of a QoS 1 publish goes out; per publish.',
      FAST_BUCKETS,
    );
    new Gauge({
      name: 'sluice_broker_clients',
      help: 'MQTT clients connected to the local broker.',
      registers,
      collect() {
        const n = sources.brokerClients();
        if (n !== undefined) this.set(n);
      },
    });
    this.analyticsSkipped = new Counter({
      name: 'sluice_analytics_skipped_total',
      // One counter for the intake's skips (no rule: binary) and the analytics rules' (not_numeric, late).
      help: 'Events analytics and rules did not look at, by rule and reason (binary: a payload that is bytes, not UTF-8; not_numeric; late).',
      labelNames: ['rule', 'reason'],
      registers,
    });
    const bufferGauge = (name: string, help: string, read: (s: ReturnType<RingLog['stats']>) => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const l = log();
          if (l) this.set(read(l.stats()));
        },
      });
    const bufferCounter = (name: string, help: string, read: (s: ReturnType<RingLog['stats']>) => number) =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          const l = log();
          if (!l) return;
          this.reset();
          this.inc(read(l.stats()));
        },
      });
    bufferGauge('sluice_buffer_events', 'Events held in the ring log.', (s) => s.events);
    bufferGauge('sluice_buffer_bytes', 'Bytes held in the ring log.', (s) => s.bytes);
    bufferGauge('sluice_buffer_max_bytes', 'Disk budget of the ring log.', (s) => s.maxBytes);
    bufferGauge('sluice_buffer_oldest_age_seconds', 'Age of the oldest event held.', (s) =>
      s.oldestTs === null ? 0 : Math.max(0, (Date.now() - s.oldestTs) / 1000),
    );
    bufferCounter('sluice_buffer_quarantined_total', 'Damaged chunks or events moved aside.', (s) => s.quarantined);
    bufferCounter('sluice_buffer_written_bytes_total', 'Bytes handed to the storage engine since start.', (s) => s.bytesWritten);
    new Counter({
      name: 'sluice_buffer_evicted_events_total',
      help: 'Events evicted by the capacity or retention policy, by reason.',
      labelNames: ['reason'],
      registers,
      collect() {
        const l = log();
        if (!l) return;
        const s = l.stats();
        this.reset();
        const reasons = Object.entries(s.evictedByReason);
        if (reasons.length === 0) this.inc({ reason: 'capacity' }, s.evicted);
        for (const [reason, n] of reasons) this.inc({ reason }, n);
      },
    });
  }

  /** The exposition, one metric after another without blank lines between them. */
  async text(): Promise<string> {
    return (await this.registry.metrics()).replace(/\n{2,}/g, '\n');
  }
}

/**
 * A counter on `registry`, or the one already registered under `name`: a reloaded config builds new
 * engines on the same registry, and their metrics carry on.
 */
export function registeredCounter<L extends string>(registry: Registry, name: string, help: string, labelNames: L[]): Counter<L> {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Counter<L>;
  return new Counter({ name, help, labelNames, registers: [registry] });
}
