/**
 * Per-uplink Prometheus metrics, labelled `{uplink}` (bounded: one label value per configured uplink,
 * removed when its runner stops). Created once per registry and shared by every runner on it; gauges
 * read their runners' state at scrape time.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { FastHistogram, NETWORK_BUCKETS } from '../src/core/histogram.js';

export interface GaugeSource {
  readonly name: string;
  pendingEvents(): number;
  connected(): boolean;
  lagSeconds(): number;
}

export interface UplinkMetrics {
  delivered: Counter<'uplink'>;
  sentBytes: Counter<'uplink'>;
  batches: Counter<'uplink'>;
  retries: Counter<'uplink'>;
  deadLettered: Counter<'uplink'>;
  /** One send to the peer until its answer (acknowledged or not), per batch. */
  roundTrip: FastHistogram;
  sources: Set<GaugeSource>;
}

const byRegistry = new WeakMap<Registry, UplinkMetrics>();

export function uplinkMetrics(registry: Registry): UplinkMetrics {
  const existing = byRegistry.get(registry);
  if (existing) return existing;
  const sources = new Set<GaugeSource>();
  const registers = [registry];
  const labelNames = ['uplink'] as const;
  const gauge = (name: string, help: string, read: (s: GaugeSource) => number) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers,
      collect(this: Gauge<'uplink'>) {
        this.reset();
        for (const s of sources) this.set({ uplink: s.name }, read(s));
      },
    });
  gauge('sluice_uplink_pending_events', 'Events in the ring log this uplink has not delivered yet.', (s) =>
    s.pendingEvents(),
  );
  gauge('sluice_uplink_connected', '1 while the uplink is connected to its peer.', (s) => (s.connected() ? 1 : 0));
  gauge('sluice_uplink_lag_seconds', 'Age of the oldest event this uplink is still trying to deliver.', (s) =>
    s.lagSeconds(),
  );
  const metrics: UplinkMetrics = {
    delivered: new Counter({
      name: 'sluice_uplink_delivered_events_total',
      help: 'Events the peer acknowledged.',
      labelNames,
      registers,
    }),
    sentBytes: new Counter({
      name: 'sluice_uplink_sent_bytes_total',
      help: 'Encoded batch bytes the peer acknowledged.',
      labelNames,
      registers,
    }),
    batches: new Counter({
      name: 'sluice_uplink_batches_total',
      help: 'Batches the peer acknowledged.',
      labelNames,
      registers,
    }),
    retries: new Counter({
      name: 'sluice_uplink_retries_total',
      help: 'Send attempts that failed and were retried.',
      labelNames,
      registers,
    }),
    deadLettered: new Counter({
      name: 'sluice_uplink_dead_lettered_events_total',
      help: 'Events the peer rejected for good, kept in the dead-letter store.',
      labelNames,
      registers,
    }),
    roundTrip: FastHistogram.on(
      registry,
      'sluice_uplink_round_trip_seconds',
      'Time from sending a batch to the peer until its answer (acknowledgement or refusal), per batch.',
      NETWORK_BUCKETS,
      'uplink',
    ),
    sources,
  };
  byRegistry.set(registry, metrics);
  return metrics;
}
