/**
 * Sparkplug B ingest at the gateway's broker: the broker's publishes on `spBv1.0/#` are replaced,
 * before they reach the ring log, by what a host application reads from them (host.ts): one event
 * per metric, status events for births and deaths, and the raw bytes (`keepRaw`). A DATA with an
 * unknown alias or a seq gap is answered by an NCMD `Node Control/Rebirth` published on the local
 * broker to that edge node.
 *
 * Nothing is lost: a publish that yields no event (a STATE or command message, an undecodable
 * payload) is stored as it came, whatever `keepRaw` says. Problems are counted
 * (`sluice_sparkplug_problems_total`), rebirth requests too, and logged once per request (at most
 * one per node per `REBIRTH_EVERY_MS`), never per message.
 */
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { z } from 'zod';
import type { EventInput } from '../core/event.js';
import { SPARKPLUG_PREFIX, SparkplugHost } from './host.js';

export const sparkplugSchema = z
  .strictObject({
    /** Decode publishes on `spBv1.0/#` at the local broker into one event per metric. */
    ingest: z.boolean().default(true),
    /** Also store each Sparkplug publish as it came (its protobuf bytes, base64 on the wire). */
    keepRaw: z.boolean().default(true),
  })
  .prefault({});

export type SparkplugConfig = z.output<typeof sparkplugSchema>;

const STATE_PREFIX = `${SPARKPLUG_PREFIX}STATE/`;
const MAX_NODES = 1000;
const MAX_METRICS_PER_NODE = 10_000;
const REBIRTH_EVERY_MS = 5000;

export class SparkplugIngest {
  private readonly host = new SparkplugHost({ maxNodes: MAX_NODES, maxMetrics: MAX_METRICS_PER_NODE, rebirthEvery: REBIRTH_EVERY_MS });
  private readonly problems: Counter;
  private readonly rebirths: Counter;

  constructor(
    private readonly config: () => SparkplugConfig,
    /** Publishes on the local broker (the rebirth request). */
    private readonly publish: (topic: string, payload: Buffer) => Promise<void> | undefined,
    private readonly logger: Logger,
    registry: Registry,
  ) {
    this.problems = new Counter({ name: 'sluice_sparkplug_problems_total', help: 'Sparkplug B publishes not wholly understood (undecodable, unknown alias, seq gap, never born).', registers: [registry] });
    this.rebirths = new Counter({ name: 'sluice_sparkplug_rebirths_requested_total', help: 'NCMD Node Control/Rebirth requests published to edge nodes.', registers: [registry] });
  }

  /** The batch with each Sparkplug publish replaced by its events; the same array when it holds none. */
  expand(events: EventInput[]): EventInput[] {
    const config = this.config();
    if (!config.ingest) return events;
    let out: EventInput[] | undefined;
    for (let i = 0; i < events.length; i++) {
      const e = events[i];
      // STATE is a host application's own (JSON) message, not edge node telemetry: stored as it is.
      if (e.body === undefined || !e.topic.startsWith(SPARKPLUG_PREFIX) || e.topic.startsWith(STATE_PREFIX)) {
        out?.push(e);
        continue;
      }
      out ??= events.slice(0, i);
      const d = this.host.decode(e.topic, e.body, e.source);
      if (d.problem) this.problems.inc();
      if (d.rebirth) this.askRebirth(d.rebirth.topic, d.rebirth.payload, d.problem);
      if (d.events.length === 0) {
        out.push(e);
        continue;
      }
      for (const x of d.events) out.push(x);
      // Forced base64: a protobuf that happens to be valid UTF-8 is still bytes.
      if (config.keepRaw) out.push({ source: e.source, topic: e.topic, payload: e.body, body: e.body, payloadEncoding: 'base64', ts: e.ts });
    }
    return out ?? events;
  }

  private askRebirth(topic: string, payload: Uint8Array, why: string | undefined): void {
    this.rebirths.inc();
    this.logger.warn({ topic, why }, 'Sparkplug: asking the edge node for a rebirth');
    const buf = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    this.publish(topic, buf)?.catch((err: Error) => this.logger.warn({ err: err.message, topic }, 'Sparkplug rebirth request not published'));
  }
}
