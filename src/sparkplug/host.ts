/**
 * The host-application side of Sparkplug B for ingest: turns publishes on `spBv1.0/#` into events,
 * as a Sparkplug host application (Ignition, a Tahu host) reads them.
 * - NBIRTH/DBIRTH define each metric's name, alias and datatype for the node's session; NDATA/DDATA
 *   that carry only aliases are resolved to names.
 * - Each metric becomes one `reading` event on `spBv1.0/<group>/<node>[/<device>]/<metric name>`,
 *   payload `{metric, value, datatype, group, node, device?, historical?}`, the metric's timestamp as
 *   `deviceTs`. Births (with their values) and deaths also become `status` events.
 * - A DATA with an unknown alias, a `seq` that skips, or from a node never born asks the node to be
 *   born again (an NCMD `Node Control/Rebirth` the caller publishes), at most once per `rebirthEvery`
 *   per node. Metrics with an unknown alias are still kept, named `alias:<n>`, never dropped.
 * Bounded: at most `maxNodes` edge nodes and `maxMetrics` metrics per node are remembered; past that
 * a birth is refused with a reason (counted by the caller).
 */
import type { EventInput } from '../core/event.js';
import { DataType, decodePayload, encodePayload, type Metric } from '../core/sparkplug/payload.js';

export const SPARKPLUG_PREFIX = 'spBv1.0/';

export interface SparkplugOptions {
  maxNodes: number;
  maxMetrics: number;
  rebirthEvery: number;
}

export interface Decoded {
  events: EventInput[];
  /** An NCMD asking the node for a rebirth, to publish on the local broker. */
  rebirth?: { topic: string; payload: Uint8Array };
  /** Why (part of) the message was not understood: one sentence, for the log and a counter. */
  problem?: string;
}

interface Known {
  name: string;
  datatype: number;
}

interface NodeState {
  /** alias → metric, per device ('' is the node itself). */
  aliases: Map<string, Map<number, Known>>;
  metricCount: number;
  seq?: number;
  bdSeq?: number | bigint;
}

const TYPE_NAMES = new Map<number, string>(Object.entries(DataType).map(([k, v]) => [v, k]));

export class SparkplugHost {
  private readonly nodes = new Map<string, NodeState>();
  /** When each node was last asked for a rebirth (bounded like the nodes). */
  private readonly rebirthAt = new Map<string, number>();

  constructor(
    private readonly opts: SparkplugOptions,
    private readonly now: () => number = Date.now,
  ) {}

  decode(topic: string, body: Buffer, source = 'mqtt'): Decoded {
    const parts = topic.split('/');
    // spBv1.0/<group>/<type>/<node>[/<device>]; STATE and malformed topics are not telemetry.
    if (parts.length < 4 || parts.length > 5 || parts[2] === 'STATE') {
      return { events: [], problem: `"${topic}" is not a Sparkplug B edge node topic` };
    }
    const [, group, type, node, device = ''] = parts;
    if (type === 'NCMD' || type === 'DCMD') return { events: [] };
    const key = `${group}/${node}`;
    let state = this.nodes.get(key);
    const datatypeOf = (alias: number) => state?.aliases.get(device)?.get(alias)?.datatype;
    let payload;
    try {
      payload = decodePayload(body, datatypeOf);
    } catch (err) {
      return { events: [], problem: `${topic}: ${(err as Error).message}` };
    }
    const where = { group, node, ...(device ? { device } : {}) };
    const base = `spBv1.0/${group}/${node}${device ? `/${device}` : ''}`;
    const status = (what: string, extra: Record<string, unknown> = {}): EventInput => ({
      source,
      topic: base,
      kind: 'status',
      payload: { sparkplug: what, ...where, ...extra },
      deviceTs: payload.timestamp,
    });

    if (type === 'NBIRTH') {
      if (!state && this.nodes.size >= this.opts.maxNodes) {
        return { events: [], problem: `${topic}: already tracking ${this.opts.maxNodes} Sparkplug edge nodes` };
      }
      state = { aliases: new Map(), metricCount: 0 };
      this.nodes.set(key, state);
    }
    if (!state) {
      // Kept all the same (metrics named by alias where they carry no name); the node is asked to be born.
      const events = type === 'NDATA' || type === 'DDATA' ? this.readings(payload.metrics, undefined, device, base, where, source) : [];
      return { events, ...this.rebirth(key, group, node, `${topic}: ${type} from an edge node that was never born`) };
    }

    if (type === 'NBIRTH' || type === 'DBIRTH') {
      const refused = this.learn(state, device, payload.metrics);
      state.seq = payload.seq;
      if (type === 'NBIRTH') state.bdSeq = payload.metrics.find((m) => m.name === 'bdSeq')?.value as number | bigint | undefined;
      const events = [status(type, type === 'NBIRTH' ? { bdSeq: safe(state.bdSeq) } : {}), ...this.readings(payload.metrics, state, device, base, where, source)];
      return refused ? { events, problem: `${topic}: ${refused}` } : { events };
    }
    if (type === 'NDEATH' || type === 'DDEATH') {
      if (type === 'NDEATH') this.nodes.delete(key);
      else state.aliases.delete(device);
      const bdSeq = payload.metrics.find((m) => m.name === 'bdSeq')?.value;
      return { events: [status(type, bdSeq === undefined ? {} : { bdSeq: safe(bdSeq as number | bigint) })] };
    }
    if (type !== 'NDATA' && type !== 'DDATA') return { events: [], problem: `${topic}: unknown Sparkplug message type "${type}"` };

    let problem: string | undefined;
    const expected = state.seq === undefined ? undefined : (state.seq + 1) & 255;
    if (payload.seq !== undefined) {
      if (expected !== undefined && payload.seq !== expected) problem = `${topic}: seq ${payload.seq} where ${expected} was next`;
      state.seq = payload.seq;
    }
    const unknown = payload.metrics.find((m) => m.name === undefined && datatypeOf(m.alias ?? -1) === undefined);
    if (!problem && unknown) problem = `${topic}: alias ${unknown.alias} was not in the birth certificate`;
    const events = this.readings(payload.metrics, state, device, base, where, source);
    return problem ? { events, ...this.rebirth(key, group, node, problem) } : { events };
  }

  /** Records a birth certificate's metrics; returns why some were refused, if any. */
  private learn(state: NodeState, device: string, metrics: Metric[]): string | undefined {
    const previous = state.aliases.get(device);
    if (previous) state.metricCount -= previous.size;
    const table = new Map<number, Known>();
    state.aliases.set(device, table);
    let refused = 0;
    for (const m of metrics) {
      if (m.alias === undefined || m.name === undefined || m.datatype === undefined) continue;
      if (state.metricCount >= this.opts.maxMetrics) {
        refused++;
        continue;
      }
      table.set(m.alias, { name: m.name, datatype: m.datatype });
      state.metricCount++;
    }
    return refused ? `${refused} metrics over the limit of ${this.opts.maxMetrics} per edge node were not remembered` : undefined;
  }

  private readings(
    metrics: Metric[],
    state: NodeState | undefined,
    device: string,
    base: string,
    where: Record<string, string>,
    source: string,
  ): EventInput[] {
    const table = state?.aliases.get(device);
    return metrics.map((m) => {
      const known = m.alias === undefined ? undefined : table?.get(m.alias);
      const name = m.name ?? known?.name ?? `alias:${m.alias}`;
      const datatype = m.datatype ?? known?.datatype;
      return {
        source,
        topic: `${base}/${name}`,
        kind: 'reading',
        deviceTs: m.timestamp,
        payload: {
          metric: name,
          value: jsonValue(m.value),
          datatype: datatype === undefined ? 'Unknown' : (TYPE_NAMES.get(datatype) ?? `type ${datatype}`),
          ...where,
          ...(m.isHistorical ? { historical: true } : {}),
        },
      };
    });
  }

  private rebirth(key: string, group: string, node: string, problem: string): Omit<Decoded, 'events'> {
    const now = this.now();
    if (now - (this.rebirthAt.get(key) ?? -Infinity) < this.opts.rebirthEvery) return { problem };
    if (this.rebirthAt.size >= this.opts.maxNodes) this.rebirthAt.clear();
    this.rebirthAt.set(key, now);
    const payload = encodePayload({
      timestamp: now,
      metrics: [{ name: 'Node Control/Rebirth', datatype: DataType.Boolean, value: true, timestamp: now }],
    });
    return { problem, rebirth: { topic: `spBv1.0/${group}/NCMD/${node}`, payload } };
  }
}

function safe(v: number | bigint | undefined): number | string | undefined {
  return typeof v === 'bigint' ? v.toString() : v;
}

/** A metric value as JSON can carry it: 64-bit integers past 2^53 as strings, bytes as base64. */
function jsonValue(v: Metric['value']): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  return v;
}
