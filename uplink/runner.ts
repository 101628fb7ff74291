/**
 * long because: the delivery loop, its commit rule and the state it reports are one invariant
 * (the cursor never passes an undone event); status types are in status.ts, helpers in runner-util.ts.
 *
 * The uplink runner: one per configured uplink, shared by every sink type. It owns everything that is
 * not protocol: reading batches from the uplink's own ring-log cursor, batching by events/bytes/age,
 * the topic/kind filter, transmit windows, the bandwidth cap, retries with exponential backoff and full
 * jitter, dead letters, metrics and status. The sink only speaks its protocol (uplink/sink.ts).
 *
 * Guarantees (uplink/SPEC.md states them normatively):
 * - The cursor is committed only past events the peer acknowledged (`accepted`) or that were written
 *   to the dead-letter store (`rejected`), and only as far as every earlier event of the batch is
 *   also done: an event is never skipped, so delivery is at least once, across restarts.
 * - Events are handed to the sink in the order the reader gives them (seq order within each lane);
 *   a retry resends only what is not yet done, oldest first.
 * - A slow or dead peer never blocks intake or another uplink: the runner only reads the log.
 * - Memory is bounded by two batches (`batch.maxEvents`, `batch.maxBytes`): one in flight, one read ahead.
 * - The runner starts and stops its sink (`sink.start()` is retried with backoff until it succeeds).
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { LogReader } from '../buffer/types.js';
import { scrubCredentials } from '../src/core/scrub.js';
import type { StoredEvent } from '../src/core/event.js';
import type { Series } from '../src/core/histogram.js';
import { fullJitter, sleep } from './backoff.js';
import type { CommonUplinkConfig } from './common-schema.js';
import { DeadLetterStore } from './dead-letter.js';
import { compileFilter, type EventPredicate } from './filter.js';
import { type UplinkMetrics, uplinkMetrics } from './metrics.js';
import { batchIdOf, type SendResult, type Sink } from './sink.js';
import { TokenBucket } from './token-bucket.js';
import { TransmitWindows } from './window.js';
import { maxTs, message, minTs, nullableScrub, sizeOf, withDeadline } from './runner-util.js';
import type { UplinkState, UplinkStatus } from './status.js';

export type { UplinkState, UplinkStatus } from './status.js';

export interface UplinkRunnerOptions {
  config: CommonUplinkConfig;
  sink: Sink;
  reader: LogReader;
  gatewayId: string;
  logger: Logger;
  registry: Registry;
  /** The gateway's data directory: dead letters go to `<dataDir>/dead-letter/`. Without it they are only logged and counted. */
  dataDir?: string;
  /** An already open dead-letter store (tests); takes precedence over `dataDir`. */
  deadLetter?: DeadLetterStore;
  /** The compiled `where:` of the config (the gateway compiles it: the runner knows no expression language). */
  where?: EventPredicate;
}

/** The reader options an uplink's config asks for (`log.reader(name, readerOptions(config))`). */
export function readerOptions(config: CommonUplinkConfig): { liveFirst: boolean; backlogShare: number } {
  return { liveFirst: config.liveFirst, backlogShare: config.backlogShare };
}

/** Longest `Retry-After` honoured; beyond it the peer is asked again anyway. */
const MAX_RETRY_AFTER_MS = 3_600_000;

export class UplinkRunner {
  private readonly config: CommonUplinkConfig;
  private readonly sink: Sink;
  private readonly reader: LogReader;
  private readonly gatewayId: string;
  private readonly logger: Logger;
  private readonly metrics: UplinkMetrics;
  private readonly filter;
  private readonly bucket?: TokenBucket;
  private readonly windows?: TransmitWindows;
  private readonly dataDir?: string;
  private deadLetter?: DeadLetterStore;
  private readonly roundTrip: Series;

  private loop?: Promise<void>;
  private stopping = false;
  /** Aborted (and replaced) to cut any wait short: stop, flush. */
  private wakeCtl = new AbortController();
  private flushing = false;
  private state: UplinkState = 'stopped';
  private delivered = 0;
  private deliveredBatches = 0;
  private retried = 0;
  private deadLettered = 0;
  private lastError: string | null = null;
  private lastErrorAt: number | null = null;
  private lastLoggedError = '';
  private lastLoggedAt = 0;
  private lastDeliveryAt: number | null = null;
  /** `ts` of the oldest event read but not yet committed (for lag). */
  private oldestUndoneTs: number | null = null;
  /** `ts` of the newest event of the last batch wholly delivered. */
  private lastDeliveredTs: number | null = null;
  private startedAt = Date.now();
  private readonly gaugeSource;
  /** The chain of cursor persists in flight (awaited at stop). */
  private commits: Promise<unknown> = Promise.resolve();

  constructor(opts: UplinkRunnerOptions) {
    this.config = opts.config;
    this.sink = opts.sink;
    this.reader = opts.reader;
    this.gatewayId = opts.gatewayId;
    // The caller's logger carries the uplink's name (the gateway binds it).
    this.logger = opts.logger;
    this.metrics = uplinkMetrics(opts.registry);
    this.roundTrip = this.metrics.roundTrip.child(opts.config.name);
    this.filter = compileFilter(opts.config.filter, opts.where);
    if (opts.config.maxBytesPerSecond) this.bucket = new TokenBucket(opts.config.maxBytesPerSecond);
    if (opts.config.transmitWindows) this.windows = new TransmitWindows(opts.config.transmitWindows);
    this.dataDir = opts.dataDir;
    this.deadLetter = opts.deadLetter;
    const name = opts.config.name;
    this.gaugeSource = {
      name,
      pendingEvents: () => this.pendingEvents(),
      connected: () => this.connected(),
      lagSeconds: () => this.lagSeconds(),
    };
  }

  get name(): string {
    return this.config.name;
  }

  start(): void {
    if (this.loop) return;
    this.stopping = false;
    this.startedAt = Date.now();
    if (!this.config.enabled) {
      // Disabled: the cursor stays where it is and nothing connects; status still reports the backlog.
      this.state = 'disabled';
      this.metrics.sources.add(this.gaugeSource);
      return;
    }
    this.state = 'starting';
    this.metrics.sources.add(this.gaugeSource);
    this.loop = this.run().catch((err) => {
      // run() handles its own errors; this is a bug guard so the process never sees an unhandled rejection.
      this.logger.error({ err }, 'uplink runner stopped unexpectedly');
    });
  }

  /**
   * Stops reading, waits until `deadline` for an in-flight send to settle (its events are committed
   * if acknowledged), then stops the sink. Unacknowledged events stay in the log for the next start.
   * `deadline` is epoch ms (as the gateway passes it); a value below 1e12 is taken as a duration in ms.
   */
  async stop(deadline = 5000): Promise<void> {
    const until = deadline < 1e12 ? Date.now() + deadline : deadline;
    this.stopping = true;
    this.wake();
    if (this.loop) {
      let timer: NodeJS.Timeout | undefined;
      // The sink gets at least a third of the time to close.
      const loopMs = Math.max(0, ((until - Date.now()) * 2) / 3);
      await Promise.race([this.loop, new Promise((r) => (timer = setTimeout(r, loopMs)))]);
      clearTimeout(timer);
    }
    const wasDisabled = this.state === 'disabled';
    this.loop = undefined;
    this.state = 'stopped';
    await withDeadline(this.commits, Math.max(100, until - Date.now()));
    const left = Math.max(100, until - Date.now());
    await withDeadline(wasDisabled ? Promise.resolve() : this.sink.stop(), left).catch((err) =>
      this.logger.warn({ err }, 'the uplink did not stop cleanly'),
    );
    this.reader.rewind();
    this.windows?.close();
    await this.deadLetter?.close().catch(() => {});
    this.deadLetter = undefined;
    this.metrics.sources.delete(this.gaugeSource);
    this.metrics.roundTrip.remove(this.name, this.roundTrip);
    for (const c of [
      this.metrics.delivered,
      this.metrics.sentBytes,
      this.metrics.batches,
      this.metrics.retries,
      this.metrics.deadLettered,
    ]) {
      c.remove({ uplink: this.name });
    }
  }

  /** Sends the backlog now, ignoring transmit windows and cutting a backoff short, until caught up. */
  flush(): void {
    this.flushing = true;
    this.wake();
  }

  status(): UplinkStatus {
    const stats = this.readerStats();
    const health = this.health();
    // While the sink is down its own error (e.g. ECONNREFUSED on reconnect) is the current one.
    const sinkError = !health.connected && health.lastError ? health.lastError : undefined;
    return {
      name: this.config.name,
      type: this.config.type,
      state: this.state,
      connected: health.connected,
      pendingEvents: stats?.pendingEvents ?? 0,
      deliveredEvents: this.delivered,
      deliveredBatches: this.deliveredBatches,
      retried: this.retried,
      deadLettered: this.deadLettered,
      lastError: nullableScrub(sinkError ?? this.lastError),
      lastErrorAt: this.lastErrorAt,
      lagSeconds: this.lagSeconds(),
      lastDeliveryAt: this.lastDeliveryAt,
      windowOpen: this.windows ? this.windows.isOpen() : null,
      skipped: stats?.skipped ?? 0,
      deadLetterStore: this.deadLetterStats(),
    };
  }

  private deadLetterStats(): UplinkStatus['deadLetterStore'] {
    if (!this.deadLetter) return null;
    const { held, bytes, discarded, path } = this.deadLetter.stats();
    return { held, bytes, discarded, path };
  }

  private health(): { connected: boolean; lastError?: string } {
    try {
      return this.sink.health();
    } catch (err) {
      return { connected: false, lastError: message(err) };
    }
  }

  private connected(): boolean {
    return this.health().connected;
  }

  private readerStats() {
    try {
      return this.reader.stats();
    } catch {
      return undefined;
    }
  }

  private pendingEvents(): number {
    return this.readerStats()?.pendingEvents ?? 0;
  }

  /**
   * Age of the oldest event not yet delivered. Exact while a batch is in flight; between batches (a
   * closed window, a stalled start) the next event's time is not known without reading it, so the
   * newest delivered event's time (or the runner's start) stands in: an upper bound once something
   * was delivered, a lower bound before.
   */
  private lagSeconds(): number {
    const since =
      this.oldestUndoneTs ?? (this.pendingEvents() > 0 ? (this.lastDeliveredTs ?? this.startedAt) : null);
    return since === null ? 0 : Math.max(0, (Date.now() - since) / 1000);
  }

  private wake(): void {
    this.wakeCtl.abort();
    this.wakeCtl = new AbortController();
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.stopping) {
      try {
        await this.sink.start();
        break;
      } catch (err) {
        this.recordError(`could not start: ${message(err)}`);
        await sleep(
          fullJitter(attempt++, this.config.retry.initialDelay, this.config.retry.maxDelay),
          this.wakeCtl.signal,
        );
      }
    }
    if (!this.deadLetter && this.dataDir) {
      try {
        this.deadLetter = await DeadLetterStore.open(
          `${this.dataDir}/dead-letter`,
          this.name,
          this.config.deadLetter.maxBytes,
        );
      } catch (err) {
        this.recordError(
          `the dead-letter store could not be opened (rejected events will be logged only): ${message(err)}`,
        );
      }
    }
    attempt = 0;
    // The next batch is read while the current one is in flight (one batch ahead: reading the log and
    // waiting for the peer's ack overlap). It is sent after the current one, so order holds; if the
    // runner stops first, its events were never committed and are read again next time.
    let ahead: Promise<StoredEvent[][]> | undefined;
    while (!this.stopping) {
      try {
        if (!(await this.gate())) continue;
        const chunks = ahead ? await ahead : await this.collect(false);
        ahead = undefined;
        if (chunks.length === 0) continue;
        ahead = this.collect(true);
        ahead.catch(() => {}); // awaited (and its error handled) on the next turn
        await this.deliver(chunks);
        attempt = 0;
      } catch (err) {
        // Reader or dead-letter failure: nothing past the last commit is lost; read again after a pause.
        this.recordError(message(err));
        if (ahead) await ahead.catch(() => {});
        ahead = undefined;
        this.reader.rewind();
        this.oldestUndoneTs = null;
        this.state = 'backoff';
        await sleep(
          fullJitter(attempt++, this.config.retry.initialDelay, this.config.retry.maxDelay),
          this.wakeCtl.signal,
        );
      }
    }
    // Let a read in flight settle before stop() rewinds the reader, so it cannot move the position
    // of the runner that replaces this one.
    if (ahead) await ahead.catch(() => {});
  }

  /** True when sending may go on; otherwise waits (until the window opens, a flush, or stop) and returns false. */
  private async gate(): Promise<boolean> {
    if (!this.windows || this.flushing || this.windows.isOpen()) return true;
    this.state = 'window-closed';
    await sleep(this.windows.msToNextCheck(), this.wakeCtl.signal);
    return false;
  }

  /**
   * One batch: waits for the first events, then up to `batch.maxDelay` for it to fill. Returns the
   * reader's hand-outs as they came (each `next` result is one span the reader can acknowledge).
   */
  private async collect(readAhead: boolean): Promise<StoredEvent[][]> {
    const { maxEvents, maxBytes, maxDelay } = this.config.batch;
    const first = await this.reader.next(maxEvents, maxBytes, this.filter);
    if (this.stopping) {
      // Read while stopping: never sent, so hand the position back (a duplicate later, never a gap).
      this.reader.rewind();
      return [];
    }
    if (first.length === 0) {
      // Read ahead, an empty read only means the batch in flight was the last one: the caller comes
      // back after delivering it. Otherwise everything is delivered: a flush is over.
      if (readAhead) return [];
      this.flushing = false;
      this.state = 'idle';
      await this.waitForEvents(this.windows ? this.windows.msToNextCheck() : undefined);
      return [];
    }
    const chunks = [first];
    let count = first.length;
    let bytes = sizeOf(first);
    if (maxDelay > 0 && count < maxEvents && bytes < maxBytes) {
      const deadline = Date.now() + maxDelay;
      while (!this.stopping && count < maxEvents && bytes < maxBytes) {
        const left = deadline - Date.now();
        if (left <= 0) break;
        await this.waitForEvents(left);
        const more = await this.reader.next(maxEvents - count, maxBytes - bytes, this.filter);
        if (more.length > 0) {
          chunks.push(more);
          count += more.length;
          bytes += sizeOf(more);
        }
      }
    }
    return chunks;
  }

  /** Resolves when the reader has events, after `timeoutMs`, or on wake. */
  private async waitForEvents(timeoutMs?: number): Promise<void> {
    const ctl = new AbortController();
    const wake = this.wakeCtl.signal;
    const onWake = () => ctl.abort();
    wake.addEventListener('abort', onWake, { once: true });
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => ctl.abort(), timeoutMs);
    try {
      await this.reader.wait(ctl.signal);
    } finally {
      clearTimeout(timer);
      wake.removeEventListener('abort', onWake);
      ctl.abort();
    }
  }

  /**
   * Sends the batch until every event is accepted or dead-lettered (or the runner stops). After each
   * attempt it commits, hand-out by hand-out in order, the longest done prefix, and only once every
   * earlier hand-out is wholly done: a plain cursor never passes an undone event, and a live-first
   * reader acknowledges exactly the spans it handed out. A retry resends only what is not done.
   */
  private async deliver(chunks: StoredEvent[][]): Promise<void> {
    this.state = 'sending';
    const events = chunks.flat();
    const done = new Array<boolean>(events.length).fill(false);
    // Per hand-out: its first index into `events`, its length and how much of it is committed.
    const spans: { from: number; length: number; committed: number }[] = [];
    let from = 0;
    for (const c of chunks) {
      spans.push({ from, length: c.length, committed: 0 });
      from += c.length;
    }
    this.oldestUndoneTs = minTs(events);
    let todo = events.map((_, i) => i);
    let attempt = 0;
    while (todo.length > 0) {
      if (this.stopping) return;
      if (this.bucket) await this.bucket.ready(this.wakeCtl.signal);
      if (this.stopping) return;
      const batchEvents = todo.map((i) => events[i]);
      const batch = { gateway: this.gatewayId, batchId: batchIdOf(batchEvents), events: batchEvents };
      let result: SendResult;
      const sentAt = performance.now();
      try {
        result = await this.sink.send(batch);
        this.roundTrip.observe((performance.now() - sentAt) / 1000);
      } catch (err) {
        result = { accepted: [], rejected: [], retry: [], error: message(err) };
      }
      this.bucket?.spend(result.bytes ?? sizeOf(batchEvents));

      const inRange = (i: number) => Number.isInteger(i) && i >= 0 && i < todo.length;
      const accepted = [...new Set(result.accepted.filter(inRange))];
      const acceptedSet = new Set(accepted);
      const rejectedIdx = [...new Set(result.rejected.filter((i) => inRange(i) && !acceptedSet.has(i)))].sort(
        (a, b) => a - b,
      );
      if (rejectedIdx.length > 0) {
        await this.toDeadLetter(
          rejectedIdx.map((i) => batchEvents[i]),
          result.error ?? 'the peer rejected the events',
        );
      }
      let acceptedBytes = 0;
      for (const i of accepted) {
        done[todo[i]] = true;
        acceptedBytes += batchEvents[i].json.length;
      }
      for (const i of rejectedIdx) done[todo[i]] = true;
      if (accepted.length > 0) {
        this.delivered += accepted.length;
        this.deliveredBatches++;
        this.lastDeliveryAt = Date.now();
        this.metrics.delivered.inc({ uplink: this.name }, accepted.length);
        this.metrics.batches.inc({ uplink: this.name });
        this.metrics.sentBytes.inc(
          { uplink: this.name },
          result.bytes !== undefined && accepted.length === todo.length ? result.bytes : acceptedBytes,
        );
      }

      for (const span of spans) {
        let n = span.committed;
        while (n < span.length && done[span.from + n]) n++;
        if (n > span.committed) {
          this.commit(events[span.from + n - 1].seq);
          span.committed = n;
        }
        if (n < span.length) break;
      }
      todo = todo.filter((i) => !done[i]);
      this.oldestUndoneTs = minTs(todo.map((i) => events[i]));
      if (todo.length === 0) this.lastDeliveredTs = maxTs(events);
      if (todo.length === 0) {
        if (attempt > 0) this.logger.info({ retries: attempt }, 'uplink delivering again');
        return;
      }

      this.retried++;
      this.metrics.retries.inc({ uplink: this.name });
      this.recordError(result.error ?? `the peer did not acknowledge ${todo.length} of ${batchEvents.length} events`);
      const delay =
        result.retryAfterMs !== undefined
          ? Math.min(Math.max(0, result.retryAfterMs), MAX_RETRY_AFTER_MS)
          : fullJitter(attempt, this.config.retry.initialDelay, this.config.retry.maxDelay);
      attempt++;
      this.state = 'backoff';
      await sleep(delay, this.wakeCtl.signal);
      this.state = 'sending';
    }
  }

  /**
   * Commits without holding up the next batch: the reader applies the acknowledgement at once (its
   * read position and pending count move now) and persists it with the log's next write, which may
   * wait for a group commit's fsync. Waiting for that per batch would cap the drain rate at the fsync
   * rate; the chain is awaited at stop, and a failed persist is reported (the events are then
   * re-delivered after a restart: at least once, never lost).
   */
  private commit(seq: number): void {
    const p = this.reader.commit(seq).catch((err) => this.recordError(`could not persist the cursor: ${message(err)}`));
    this.commits = this.commits.then(() => p);
  }

  private async toDeadLetter(events: StoredEvent[], reason: string): Promise<void> {
    if (this.deadLetter) {
      await this.deadLetter.add(events, reason);
    } else {
      this.logger.warn(
        { seqs: events.map((e) => e.seq).slice(0, 20), reason },
        'events rejected by the peer (no dead-letter store)',
      );
    }
    this.deadLettered += events.length;
    this.metrics.deadLettered.inc({ uplink: this.name }, events.length);
    this.recordError(`${events.length} event(s) rejected and dead-lettered: ${reason}`);
  }

  private recordError(raw: string): void {
    const text = scrubCredentials(raw);
    this.lastError = text;
    this.lastErrorAt = Date.now();
    // One line per distinct error, and a reminder a minute while it persists: an outage does not flood the log.
    if (text !== this.lastLoggedError || this.lastErrorAt - this.lastLoggedAt > 60_000) {
      this.logger.warn({ error: text }, 'uplink error');
      this.lastLoggedError = text;
      this.lastLoggedAt = this.lastErrorAt;
    }
  }
}
