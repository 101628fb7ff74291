/**
 * The Sink conformance suite: the same checks run against every sink with its real peer, through a
 * TCP fault proxy (test/helpers/fault-proxy.ts), driven by the shared runner:
 * - contract batches (`{"gateway","batchId","events"}`), batchId = `<firstSeq>-<lastSeq>`, in order;
 * - the link reset (TCP RST) over and over mid-stream: every event still arrives, and the cursor
 *   never passes an event the peer did not acknowledge;
 * - a peer outage under live traffic (connections reset and refused for a while): nothing is
 *   committed while it lasts, the error is reported, and every event arrives once it is over.
 * A sink folder calls `describeSinkConformance` from its own test file (or uplink/conformance.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { startFaultProxy } from '../fault-proxy.js';
import type { CommonUplinkConfig } from '../../../uplink/common-schema.js';
import type { Sink } from '../../../uplink/sink.js';
import type { MemoryLog } from './memory-log.js';
import { memoryRunner } from './memory-runner.js';
import { until } from '../until.js';
import { cleanupsAfterEach } from '../cleanups.js';

export interface ReceivedBatch {
  gateway: string;
  batchId: string;
  events: { seq: number; id: string }[];
}

export interface ConformancePeer {
  /** TCP port the peer listens on (the proxy forwards to it). */
  port: number;
  /** Every batch document the peer has received so far, in arrival order. */
  received(): Promise<ReceivedBatch[]>;
  stop(): Promise<void>;
}

export interface SinkHarness<C extends CommonUplinkConfig> {
  startPeer(): Promise<ConformancePeer>;
  /** The uplink config pointing at `127.0.0.1:<port>` (the proxy), with `extra` merged in. */
  config(port: number, extra: Record<string, unknown>): C;
  sink(config: C): Sink;
}

export function describeSinkConformance<C extends CommonUplinkConfig>(label: string, harness: SinkHarness<C>): void {
  describe(`Sink conformance: ${label}`, () => {
    const cleanups = cleanupsAfterEach();

    async function setup() {
      const peer = await harness.startPeer();
      cleanups.push(() => peer.stop());
      const proxy = await startFaultProxy({ targetPort: peer.port });
      cleanups.push(() => proxy.close());
      const config = harness.config(proxy.port, {
        batch: { maxEvents: 50, maxDelay: 5 },
        retry: { initialDelay: 20, maxDelay: 200 },
        reconnect: { minDelay: 20, maxDelay: 200 },
      });
      const run = memoryRunner(config, () => harness.sink(config), { gatewayId: 'gw-conf' });
      cleanups.push(run.stop);
      return { peer, proxy, ...run };
    }

    /** Live traffic: `per` events every `everyMs` until `total` are appended. */
    function feed(log: MemoryLog, total: number, per: number, everyMs: number): { appended: number } {
      const fed = { appended: 0 };
      const feeder = setInterval(() => {
        if (fed.appended >= total) return;
        log.appendN(per);
        fed.appended += per;
      }, everyMs);
      cleanups.push(() => clearInterval(feeder));
      return fed;
    }

    it('sends contract batches in order, batchId = <firstSeq>-<lastSeq>', async () => {
      const { peer, log, reader, runner } = await setup();
      log.appendN(300);
      runner.start();
      await until(() => reader.committed === 300);
      let docs: ReceivedBatch[] = [];
      await until(async () => (docs = await peer.received()).flatMap((d) => d.events).length >= 300);
      const seqs = docs.flatMap((d) => d.events.map((e) => e.seq));
      expect(seqs).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
      for (const d of docs) {
        expect(d.gateway).toBe('gw-conf');
        expect(d.batchId).toBe(`${d.events[0].seq}-${d.events[d.events.length - 1].seq}`);
        expect(d.events[0].id).toBe(`gw-conf:${d.events[0].seq}`);
      }
    });

    it('loses nothing when the link is reset again and again mid-stream', async () => {
      const { peer, proxy, log, reader, runner } = await setup();
      runner.start();
      const fed = feed(log, 2000, 40, 10);
      // Five resets while events flow.
      for (let i = 0; i < 5; i++) {
        await new Promise((r) => setTimeout(r, 150));
        proxy.reset();
      }
      await until(() => fed.appended === 2000 && reader.committed === 2000, 30_000);
      let seen = new Set<number>();
      await until(async () => {
        seen = new Set((await peer.received()).flatMap((d) => d.events.map((e) => e.seq)));
        return seen.size >= 2000;
      });
      expect(seen).toEqual(new Set(Array.from({ length: 2000 }, (_, i) => i + 1)));
      expect(proxy.stats.resets).toBeGreaterThan(0);
    });

    it('loses nothing when the peer is unreachable for a while under live traffic', async () => {
      const { peer, proxy, log, reader, runner } = await setup();
      runner.start();
      await until(() => runner.status().connected);
      const fed = feed(log, 3000, 60, 20);
      await until(() => reader.committed >= 600);
      proxy.refuse(true);
      proxy.reset();
      await until(() => !runner.status().connected);
      const committedWhileDown = reader.committed;
      await new Promise((r) => setTimeout(r, 400));
      // Nothing is committed while nobody acknowledges, and the uplink says why.
      expect(reader.committed).toBe(committedWhileDown);
      expect(runner.status().lastError).toBeTruthy();
      expect(runner.status().pendingEvents).toBeGreaterThan(0);
      proxy.refuse(false);
      await until(() => fed.appended === 3000 && reader.committed === 3000, 30_000);
      let seen = new Set<number>();
      await until(async () => {
        seen = new Set((await peer.received()).flatMap((d) => d.events.map((e) => e.seq)));
        return seen.size >= 3000;
      });
      expect(seen).toEqual(new Set(Array.from({ length: 3000 }, (_, i) => i + 1)));
      expect(runner.status()).toMatchObject({ connected: true, pendingEvents: 0 });
    });
  });
}
