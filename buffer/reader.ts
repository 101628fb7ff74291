/**
 * A named reader of the ring log (the LogReader contract in buffer/types.ts).
 *
 * Each reader has two lanes: the priority lane (anomalies, alarms), always read first, and the normal lane.
 * What a reader acknowledged is an AckSet per lane (floor + a few ranges), persisted by the log in
 * its next write batch. Every batch `next` hands out is remembered by the seq of its last event;
 * `commit(seq)` acknowledges exactly that batch's span, so a live-first reader can acknowledge new
 * events while older backlog stays pending, and a restart re-delivers only what was not acknowledged.
 * A `commit(seq)` that names no batch handed out acknowledges everything up to `seq` (the plain
 * cursor meaning).
 */
import type { EventKind, StoredEvent } from '../src/core/event.js';
import { AckSet } from './ack-set.js';
import { type ChunkRead, firstAfter } from './chunk-source.js';
import { LANE_NORMAL, LANE_PRIORITY, type Lane } from './keys.js';
import type { LogReader, ReaderOptions, ReaderStats } from './types.js';

/** What a reader needs from the log. */
export interface ReaderHost {
  laneLast(lane: Lane): number;
  laneSpan(lane: Lane): { events: number; firstSeq: number; lastSeq: number };
  /** The first durable chunk of `lane` holding an event with seq > p (as envelopes), or null. */
  chunkAfter(lane: Lane, p: number): Promise<ChunkRead | null>;
  persistReader(reader: Reader): Promise<void>;
  readonly closed: boolean;
}

export interface PersistedReader {
  v: 1;
  lanes: Array<{ floor: number; ranges: Array<[number, number]> }>;
  skipped: number;
}

interface Issued {
  lane: Lane;
  lo: number;
  hi: number;
}

/** How many handed-out batches are remembered for commit(seq) to find (oldest forgotten first). */
const MAX_ISSUED = 4096;
/** A next() call examines at most this many events that a filter drops before it returns. */
const MAX_EXAMINED = 50_000;

export class Reader implements LogReader {
  readonly acks: [AckSet, AckSet];
  skipped: number;
  /** Read positions: the last seq handed out (or passed over) per lane. */
  private pos: [number, number];
  /** Live-first: the first seq of the live part of the normal lane, and its own read position. */
  private live: { start: number; pos: number } | null = null;
  private backlogShare = 0.2;
  private servedLive = 0;
  private servedBacklog = 0;
  private readonly issued = new Map<number, Issued>();
  private waiters: Array<() => void> = [];

  constructor(
    readonly name: string,
    private readonly host: ReaderHost,
    saved: PersistedReader | null,
    options: ReaderOptions = {},
  ) {
    const lanes = saved?.lanes ?? [];
    this.acks = [
      new AckSet(lanes[0]?.floor ?? 0, lanes[0]?.ranges),
      new AckSet(lanes[1]?.floor ?? 0, lanes[1]?.ranges),
    ];
    this.skipped = saved?.skipped ?? 0;
    this.pos = [this.acks[0].floor, this.acks[1].floor];
    this.configure(options);
  }

  /** Applies reader options (a reader re-requested by name may change them). */
  configure(options: ReaderOptions): void {
    if (options.backlogShare !== undefined) this.backlogShare = Math.min(1, Math.max(0, options.backlogShare));
    if (options.liveFirst && !this.live) {
      const start = this.host.laneLast(LANE_NORMAL) + 1;
      this.live = { start, pos: Math.max(start - 1, this.acks[0].floor) };
    } else if (options.liveFirst === false) {
      this.live = null;
    }
  }

  toJSON(): PersistedReader {
    return { v: 1, lanes: [this.acks[0].toJSON(), this.acks[1].toJSON()], skipped: this.skipped };
  }

  async next(
    maxEvents: number,
    maxBytes: number,
    filter?: (kind: EventKind, topic: string, json: string) => boolean,
  ): Promise<StoredEvent[]> {
    if (this.host.closed || maxEvents <= 0) return [];
    const budget = { examined: 0 };
    // The priority lane first, always.
    const pr = await this.readLane(
      LANE_PRIORITY,
      this.pos[1],
      this.host.laneLast(LANE_PRIORITY),
      maxEvents,
      maxBytes,
      filter,
      budget,
    );
    this.pos[1] = pr.pos;
    if (pr.events.length > 0) return pr.events;

    const last = this.host.laneLast(LANE_NORMAL);
    const live = this.live;
    if (!live) {
      const r = await this.readLane(LANE_NORMAL, this.pos[0], last, maxEvents, maxBytes, filter, budget);
      this.pos[0] = r.pos;
      return r.events;
    }
    const backlogEnd = live.start - 1;
    const backlogOpen = this.acks[0].skip(this.pos[0]) < backlogEnd;
    const liveOpen = this.acks[0].skip(live.pos) < last;
    // Backlog gets its share of what is handed out; live gets the rest and always wins a tie.
    const total = this.servedLive + this.servedBacklog;
    const backlogTurn = backlogOpen && (!liveOpen || this.servedBacklog < this.backlogShare * total);
    if (backlogTurn) {
      const r = await this.readLane(LANE_NORMAL, this.pos[0], backlogEnd, maxEvents, maxBytes, filter, budget);
      this.pos[0] = r.pos;
      this.servedBacklog += r.events.length;
      if (r.events.length > 0 || !liveOpen) return r.events;
    }
    const r = await this.readLane(LANE_NORMAL, live.pos, last, maxEvents, maxBytes, filter, budget);
    live.pos = r.pos;
    this.servedLive += r.events.length;
    if (this.servedLive + this.servedBacklog > 1e9) {
      this.servedLive /= 2;
      this.servedBacklog /= 2;
    }
    if (r.events.length === 0 && backlogOpen && !backlogTurn) {
      const b = await this.readLane(LANE_NORMAL, this.pos[0], backlogEnd, maxEvents, maxBytes, filter, budget);
      this.pos[0] = b.pos;
      this.servedBacklog += b.events.length;
      return b.events;
    }
    return r.events;
  }

  /** Reads one lane after position `from`, up to seq `upper`; returns the events and the new position. */
  private async readLane(
    lane: Lane,
    from: number,
    upper: number,
    maxEvents: number,
    maxBytes: number,
    filter: ((kind: EventKind, topic: string, json: string) => boolean) | undefined,
    budget: { examined: number },
  ): Promise<{ events: StoredEvent[]; pos: number }> {
    const acks = this.acks[lane];
    const start = acks.skip(from);
    let p = start;
    const out: StoredEvent[] = [];
    let bytes = 0;
    let full = false;
    while (!full && p < upper && budget.examined < MAX_EXAMINED) {
      const read = await this.host.chunkAfter(lane, p);
      if (!read) {
        // Nothing durable after p in this lane: every seq up to `upper` is gone (evicted or quarantined).
        p = upper;
        break;
      }
      if (read.corrupt) {
        // Counted as skipped when the log quarantines it (evicted()), once for every reader.
        p = Math.max(p, read.corrupt.lastSeq);
        continue;
      }
      const chunk = read.chunk!;
      const evs = chunk.events;
      let i = firstAfter(evs, p, (e) => e.seq);
      for (; i < evs.length; i++) {
        const ev = evs[i];
        if (ev.seq > upper) {
          full = true;
          break;
        }
        budget.examined++;
        if (acks.has(ev.seq)) {
          p = acks.skip(ev.seq);
          continue;
        }
        if (filter && !filter(ev.kind, ev.topic, ev.json)) {
          p = ev.seq;
          continue;
        }
        if (out.length >= maxEvents || (out.length > 0 && bytes + ev.json.length > maxBytes)) {
          full = true;
          break;
        }
        out.push(ev);
        bytes += ev.json.length;
        p = ev.seq;
      }
      if (i >= evs.length && chunk.lastSeq > p && chunk.lastSeq <= upper) p = chunk.lastSeq;
    }
    if (p > start) {
      if (out.length > 0) {
        this.remember(out[out.length - 1].seq, { lane, lo: start + 1, hi: p });
      } else {
        // Only filtered-out (or already acknowledged) events: nothing to deliver, so acknowledged now.
        acks.add(start + 1, p);
        void this.host.persistReader(this);
      }
    }
    return { events: out, pos: p };
  }

  private remember(lastSeq: number, batch: Issued): void {
    this.issued.set(lastSeq, batch);
    if (this.issued.size > MAX_ISSUED) {
      const oldest = this.issued.keys().next().value as number;
      this.issued.delete(oldest);
    }
  }

  commit(seq: number): Promise<void> {
    const batch = this.issued.get(seq);
    if (batch) {
      this.issued.delete(seq);
      this.acks[batch.lane].add(batch.lo, batch.hi);
    } else {
      const inside = [...this.issued.entries()].find(([, b]) => b.lo <= seq && seq <= b.hi);
      if (inside) {
        // Part of a batch acknowledged (a sink accepted a prefix): the rest stays pending.
        const [, b] = inside;
        this.acks[b.lane].add(b.lo, seq);
        b.lo = seq + 1;
      } else {
        this.acks[0].raiseFloor(seq);
        this.acks[1].raiseFloor(seq);
      }
    }
    this.pos[0] = Math.max(this.pos[0], this.acks[0].floor);
    this.pos[1] = Math.max(this.pos[1], this.acks[1].floor);
    if (this.live) this.live.pos = Math.max(this.live.pos, this.acks[0].floor);
    return this.host.persistReader(this);
  }

  rewind(): void {
    this.pos = [this.acks[0].floor, this.acks[1].floor];
    if (this.live) this.live.pos = Math.max(this.live.start - 1, this.acks[0].floor);
  }

  /** A copy of the cursor state, to put back when the write that was to carry a change failed. */
  snapshot(): () => void {
    const acks = this.acks.map((a) => new AckSet(a.floor, a.ranges.map((r) => [r[0], r[1]] as [number, number])));
    const { skipped } = this;
    const pos = [...this.pos] as [number, number];
    const livePos = this.live?.pos;
    return () => {
      this.acks[0] = acks[0];
      this.acks[1] = acks[1];
      this.skipped = skipped;
      this.pos = pos;
      if (this.live && livePos !== undefined) this.live.pos = livePos;
    };
  }

  /** The log evicted (or quarantined) a chunk: unacknowledged events in it are skipped. */
  evicted(lane: Lane, firstSeq: number, lastSeq: number, count: number): void {
    const acks = this.acks[lane];
    const span = lastSeq - firstSeq + 1;
    const unacked = span - acks.countIn(firstSeq, lastSeq);
    if (unacked > 0) this.skipped += Math.round((unacked * count) / span);
    acks.raiseFloor(lastSeq);
    if (this.pos[lane] < lastSeq) this.pos[lane] = lastSeq;
    if (lane === LANE_NORMAL && this.live && this.live.pos < lastSeq) this.live.pos = lastSeq;
  }

  /** Whether events after the read position exist. */
  hasUnread(): boolean {
    if (this.acks[1].skip(this.pos[1]) < this.host.laneLast(LANE_PRIORITY)) return true;
    const last = this.host.laneLast(LANE_NORMAL);
    if (this.live) {
      return this.acks[0].skip(this.pos[0]) < this.live.start - 1 || this.acks[0].skip(this.live.pos) < last;
    }
    return this.acks[0].skip(this.pos[0]) < last;
  }

  wait(signal?: AbortSignal): Promise<void> {
    if (this.hasUnread() || signal?.aborted || this.host.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        signal?.removeEventListener('abort', done);
        const i = this.waiters.indexOf(done);
        if (i >= 0) this.waiters.splice(i, 1);
        resolve();
      };
      this.waiters.push(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /** Called by the log after each commit (and at close). */
  wake(force = false): void {
    if (this.waiters.length === 0 || (!force && !this.hasUnread())) return;
    for (const w of this.waiters.slice()) w();
  }

  stats(): ReaderStats {
    let pending = 0;
    for (const lane of [LANE_NORMAL, LANE_PRIORITY] as const) {
      const { events, firstSeq, lastSeq } = this.host.laneSpan(lane);
      if (events === 0) continue;
      const span = lastSeq - firstSeq + 1;
      const acked = this.acks[lane].countIn(firstSeq, lastSeq);
      // Exact when the lane's seqs are contiguous; otherwise proportional to the lane's density.
      pending += Math.max(0, events - Math.round((acked * events) / span));
    }
    return { name: this.name, committedSeq: this.acks[0].floor, pendingEvents: pending, skipped: this.skipped };
  }
}
