/**
 * The delivery oracle of the fault suite: a real Mosquitto stands in for the cloud, a persistent
 * subscriber records every contract batch the gateway's MQTT uplink publishes to it, and
 * `verdict()` checks the at-least-once promise against what the gateway acknowledged:
 * every acknowledged event delivered at least once, first deliveries in `seq` order, duplicates
 * counted (not an error: at-least-once allows them).
 *
 * A good publisher sends QoS 1 messages with a unique key in the payload and remembers which ones
 * the gateway acknowledged (PUBACK), across reconnects.
 */
import mqtt from 'mqtt';
import { type Peer, startMosquitto } from '../helpers/peers.js';
import type { SluiceEvent } from '../../src/core/event.js';

export class Upstream {
  peer!: Peer;
  private sub?: mqtt.MqttClient;
  /** Every event received, in arrival order (duplicates included). */
  readonly events: SluiceEvent[] = [];
  batches = 0;
  /** batchId of every batch received, in arrival order. */
  readonly batchIds: string[] = [];
  /** First-delivery order violations: a new seq arriving below one already seen. */
  outOfOrder = 0;
  duplicates = 0;
  private readonly seen = new Set<number>();
  private maxSeq = -1;

  constructor(private readonly gatewayId = 'gw-faults') {}

  static async start(gatewayId?: string): Promise<Upstream> {
    const u = new Upstream(gatewayId);
    u.peer = await startMosquitto('', true);
    await u.connect();
    return u;
  }

  get url(): string {
    return this.peer.url;
  }

  /** (Re)connects the recording subscriber; its session survives a restart of Mosquitto. */
  async connect(): Promise<void> {
    const sub = await mqtt.connectAsync(this.peer.url, {
      clientId: `oracle-${this.gatewayId}`,
      clean: false,
      reconnectPeriod: 200,
    });
    this.sub = sub;
    await sub.subscribeAsync(`sluice/${this.gatewayId}/events`, { qos: 1 });
    sub.on('message', (_t, payload) => {
      const batch = JSON.parse(payload.toString()) as { batchId: string; events: SluiceEvent[] };
      this.batches++;
      this.batchIds.push(batch.batchId);
      for (const e of batch.events) {
        this.events.push(e);
        if (this.seen.has(e.seq)) {
          this.duplicates++;
          continue;
        }
        if (e.seq < this.maxSeq) this.outOfOrder++;
        this.seen.add(e.seq);
        this.maxSeq = Math.max(this.maxSeq, e.seq);
      }
    });
  }

  /** Keys (payload.k) of the events delivered so far. */
  deliveredKeys(): Set<string> {
    const keys = new Set<string>();
    for (const e of this.events) {
      const k = (e.payload as { k?: unknown } | null)?.k;
      if (typeof k === 'string') keys.add(k);
    }
    return keys;
  }

  verdict(acked: Set<string>): {
    acknowledged: number;
    delivered: number;
    lost: number;
    duplicates: number;
    outOfOrder: number;
    missing: string[];
  } {
    const got = this.deliveredKeys();
    const missing = [...acked].filter((k) => !got.has(k));
    return {
      acknowledged: acked.size,
      delivered: acked.size - missing.length,
      lost: missing.length,
      duplicates: this.duplicates,
      outOfOrder: this.outOfOrder,
      missing: missing.slice(0, 10),
    };
  }

  /**
   * For a failed verdict: where the missing keys sit — the seqs of the delivered events just before
   * and after each run of missing ones, and the batches received around them.
   */
  diagnose(acked: Set<string>): object {
    const seqOf = new Map<string, number>();
    for (const e of this.events) {
      const k = (e.payload as { k?: unknown } | null)?.k;
      if (typeof k === 'string') seqOf.set(k, e.seq);
    }
    const runs: { from: string; to: string; count: number; seqBefore?: number; seqAfter?: number }[] = [];
    let run: (typeof runs)[number] | undefined;
    let prevSeq: number | undefined;
    for (const k of acked) {
      const seq = seqOf.get(k);
      if (seq === undefined) {
        if (!run) runs.push((run = { from: k, to: k, count: 0, seqBefore: prevSeq }));
        run.to = k;
        run.count++;
      } else {
        if (run) run.seqAfter = seq;
        run = undefined;
        prevSeq = seq;
      }
    }
    const near = (seq?: number) =>
      seq === undefined
        ? []
        : this.batchIds.filter((b) => {
            const [a, z] = b.split('-').map(Number);
            return z >= seq - 2000 && a <= seq + 2000;
          });
    return { runs: runs.slice(0, 20), batchesNear: runs.slice(0, 3).map((r) => near(r.seqBefore)) };
  }

  async stop(): Promise<void> {
    await this.sub?.endAsync(true).catch(() => {});
    await this.peer?.stop();
  }
}

/**
 * A well-behaved sensor: publishes QoS 1 messages `{"k": "<prefix>-<n>", "value": n}` with up to
 * `window` in flight, and records every key the gateway acknowledged.
 */
export class GoodPublisher {
  readonly acked = new Set<string>();
  sent = 0;
  errors = 0;
  private running = false;
  private loop?: Promise<void>;
  client!: mqtt.MqttClient;

  constructor(
    private readonly url: string,
    private readonly opts: {
      prefix: string;
      topic: string;
      window?: number;
      ratePerSec?: number;
      username?: string;
      password?: string;
    },
  ) {}

  async start(): Promise<void> {
    this.client = await mqtt.connectAsync(this.url, {
      clientId: `good-${this.opts.prefix}`,
      clean: true,
      reconnectPeriod: 200,
      connectTimeout: 5000,
      username: this.opts.username,
      password: this.opts.password,
    });
    this.client.on('error', () => {
      this.errors++;
    });
    this.running = true;
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    const window = this.opts.window ?? 10;
    const gap = this.opts.ratePerSec ? 1000 / this.opts.ratePerSec : 0;
    const inFlight = new Set<Promise<void>>();
    let n = 0;
    while (this.running) {
      const k = `${this.opts.prefix}-${n}`;
      const payload = JSON.stringify({ k, value: n });
      n++;
      this.sent++;
      const p = this.client
        .publishAsync(this.opts.topic, payload, { qos: 1 })
        .then(
          () => {
            this.acked.add(k);
          },
          () => {
            this.errors++;
          },
        )
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
      if (inFlight.size >= window) await Promise.race(inFlight);
      if (gap) await new Promise((r) => setTimeout(r, gap));
    }
    // Let what is in flight finish (mqtt.js resends it after a reconnect), bounded.
    await Promise.race([Promise.allSettled(inFlight), new Promise((r) => setTimeout(r, 15_000))]);
  }

  /** Stops publishing; resolves once the in-flight messages are acknowledged (or 15 s passed). */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    await this.client.endAsync(true).catch(() => {});
  }
}
