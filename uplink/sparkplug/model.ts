/**
 * The edge node's view of its devices: which device an event belongs to, which metrics it carries,
 * and each device's birth certificate (metric names, aliases, datatypes, last values). Bounded by
 * `maxMetrics` over the whole node: an event that would need one more is refused, never dropped
 * silently.
 *
 * An event becomes metrics this way:
 * - a reading (or aggregate, derived event) whose payload is a number, boolean or string: one metric
 *   named after the topic;
 * - a payload object: one metric per number or boolean field, named `<topic>/<field>` (`value` is
 *   the topic itself; a string `value` counts too);
 * - anything else (anomalies, alarms, status and audit events, payloads with no such field): one
 *   String metric `<kind>/<topic>` or `<topic>` holding the payload's JSON.
 * A metric's datatype is fixed by its first value (Double, Boolean or String); a value of another
 * type re-births the device with the new datatype.
 */
import type { SluiceEvent } from '../../src/core/event.js';
import { topicMatches } from '../../src/core/topics.js';
import { DataType, type Metric, type MetricValue } from '../../src/core/sparkplug/payload.js';

export interface DeviceRule {
  name: string;
  match: string;
}

interface Known {
  alias: number;
  datatype: number;
  value: MetricValue;
  timestamp: number;
}

export interface EventMetric {
  name: string;
  datatype: number;
  value: MetricValue;
  timestamp: number;
}

const TEXT_KINDS = new Set(['anomaly', 'alarm', 'status', 'audit']);

export function deviceOf(e: SluiceEvent, rules: readonly DeviceRule[]): string {
  for (const r of rules) if (topicMatches(r.match, e.topic)) return r.name;
  // Sparkplug ids may not contain MQTT separators or wildcards.
  return e.source.replace(/[/+#]/g, '_') || 'unknown';
}

export function metricsOf(e: SluiceEvent): EventMetric[] {
  const timestamp = e.deviceTs ?? e.ts;
  const p = e.payload;
  const text = (name: string): EventMetric[] => [{ name, datatype: DataType.String, value: JSON.stringify(p), timestamp }];
  if (TEXT_KINDS.has(e.kind)) return text(`${e.kind}/${e.topic}`);
  const scalar = scalarType(p);
  if (scalar) return [{ name: e.topic, datatype: scalar, value: p as MetricValue, timestamp }];
  if (p === null || typeof p !== 'object' || Array.isArray(p)) return text(e.topic);
  const out: EventMetric[] = [];
  for (const [field, value] of Object.entries(p as Record<string, unknown>)) {
    const type = scalarType(value);
    if (!type || (type === DataType.String && field !== 'value')) continue;
    out.push({ name: field === 'value' ? e.topic : `${e.topic}/${field}`, datatype: type, value: value as MetricValue, timestamp });
  }
  return out.length ? out : text(e.topic);
}

function scalarType(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? DataType.Double : undefined;
  if (typeof v === 'boolean') return DataType.Boolean;
  if (typeof v === 'string') return DataType.String;
  return undefined;
}

/** Birth certificates of every device of the node, with aliases unique across the node. */
export class EdgeModel {
  private readonly devices = new Map<string, Map<string, Known>>();
  private nextAlias = 1;
  private count = 0;

  constructor(private readonly maxMetrics: number) {}

  /**
   * Records a metric's value. Returns `birth` when the device's certificate changed (a new metric or
   * a new datatype: the device must be born again before data that uses it), `full` when the node
   * keeps `maxMetrics` already and this would be one more, else `known`.
   */
  observe(device: string, m: EventMetric): 'known' | 'birth' | 'full' {
    let metrics = this.devices.get(device);
    const known = metrics?.get(m.name);
    if (known) {
      const retyped = known.datatype !== m.datatype;
      known.datatype = m.datatype;
      known.value = m.value;
      known.timestamp = m.timestamp;
      return retyped ? 'birth' : 'known';
    }
    if (this.count >= this.maxMetrics) return 'full';
    if (!metrics) this.devices.set(device, (metrics = new Map()));
    metrics.set(m.name, { alias: this.nextAlias++, datatype: m.datatype, value: m.value, timestamp: m.timestamp });
    this.count++;
    return 'birth';
  }

  alias(device: string, name: string): number {
    return this.devices.get(device)?.get(name)?.alias ?? 0;
  }

  deviceNames(): string[] {
    return [...this.devices.keys()];
  }

  /** The DBIRTH metrics of a device: every metric it has, with name, alias, datatype and last value. */
  birthMetrics(device: string): Metric[] {
    const out: Metric[] = [];
    for (const [name, k] of this.devices.get(device) ?? []) {
      out.push({ name, alias: k.alias, datatype: k.datatype, value: k.value, timestamp: k.timestamp });
    }
    return out;
  }
}
