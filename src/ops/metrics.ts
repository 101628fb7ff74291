/**
 * The gateway's Prometheus metrics (contract "HTTP": names prefixed `sluice_`). One registry per
 * gateway (never prom-client's global one), so tests can run several gateways in one process.
 * Gauges are read from the components at scrape time rather than updated on the hot path.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import type { RingLog } from '../../buffer/types.js';

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly ingested: Counter<'source'>;
  readonly rejected: Counter<'reason'>;

  constructor(log: () => RingLog | undefined) {
    const registers = [this.registry];
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
    bufferGauge('sluice_buffer_events', 'Events held in the ring log.', (s) => s.events);
    bufferGauge('sluice_buffer_bytes', 'Bytes held in the ring log.', (s) => s.bytes);
    bufferGauge('sluice_buffer_max_bytes', 'Disk budget of the ring log.', (s) => s.maxBytes);
    bufferGauge('sluice_buffer_oldest_age_seconds', 'Age of the oldest event held.', (s) =>
      s.oldestTs === null ? 0 : Math.max(0, (Date.now() - s.oldestTs) / 1000),
    );
    bufferGauge('sluice_buffer_quarantined_total', 'Damaged chunks or events moved aside.', (s) => s.quarantined);
    bufferGauge(
      'sluice_buffer_written_bytes_total',
      'Bytes handed to the storage engine since start.',
      (s) => s.bytesWritten,
    );
    new Gauge({
      name: 'sluice_buffer_evicted_events_total',
      help: 'Events evicted by the capacity or retention policy, by reason.',
      labelNames: ['reason'],
      registers,
      collect() {
        const l = log();
        if (!l) return;
        const s = l.stats();
        const reasons = Object.entries(s.evictedByReason);
        if (reasons.length === 0) this.set({ reason: 'capacity' }, s.evicted);
        for (const [reason, n] of reasons) this.set({ reason }, n);
      },
    });
  }

  async text(): Promise<string> {
    return this.registry.metrics();
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
