/**
 * Intake of publishes on ingest topics into the ring log.
 *
 * Guarantees:
 * - A QoS 1/2 publish is acknowledged only after its event is durable: aedes sends PUBACK (PUBREC)
 *   after the publish hook calls back, and `accept` calls back only when its append resolved. If
 *   the append fails, `done` gets the error: the connection is closed without an ack and the
 *   device resends.
 * - `onFull: reject` back-pressure: a QoS 1/2 publish waits (unacknowledged) until the log has
 *   room; a QoS 0 publish, which cannot wait, is refused and counted.
 * - QoS 0 flow control: a QoS 0 publish is passed on at once and stored alongside while few bytes
 *   wait for the disk; past HOLD_QOS0_READS_BYTES its client is not read until the log catches up
 *   (read-gate.ts), past MAX_UNSTORED_QOS0_BYTES its publishes wait for the disk too.
 * - A QoS 2 publish re-sent before its PUBREL is stored once (qos2-dedupe.ts): the broker answers a
 *   copy on the same connection without passing it here; a copy on a resumed session is found here.
 */
import type { Client } from 'aedes';
import type { Logger } from 'pino';
import { BufferFullError } from '../../buffer/types.js';
import { type EventInput, payloadFromBody } from '../core/event.js';
import { isClosed, isPersistent } from './aedes-adapter.js';
import { type IncomingPersistence, storedBefore } from './qos2-dedupe.js';
import { ReadGate } from './read-gate.js';

const RETRY_FULL_MS = 250;
/** Publishes appended together at most (more wait for the next append in the same turn). */
const FLUSH_EVERY = 500;
/**
 * QoS 0 flow control, in bytes of publishes passed on before their append resolved (once appended
 * they are bytes in the ring log's commit buffer, no JS objects). Both are well below the log's
 * own write-behind limit, so QoS 0 is slowed, not refused.
 */
const HOLD_QOS0_READS_BYTES = 4 * 1024 * 1024;
const MAX_UNSTORED_QOS0_BYTES = 6 * 1024 * 1024;

type Done = (err?: Error | null) => void;

/** MQTT 5 publish properties an event keeps. */
export interface Mqtt5Fields {
  userProperties?: Record<string, string | string[]>;
  contentType?: string;
}

export interface IntakeContext {
  logger: Logger;
  ingest(events: EventInput[]): Promise<unknown>;
  countRejected(reason: string, n?: number): void;
}

export class Intake {
  readonly reads = new ReadGate();
  private pending: IngestPublish[] = [];
  private unstoredQos0Bytes = 0;
  private releaseQueued = false;
  private closing = false;

  constructor(
    private readonly ctx: IntakeContext,
    private readonly persistence: IncomingPersistence,
  ) {}

  stop(): void {
    this.closing = true;
  }

  /** Stores a publish on an ingest topic; `done` lets aedes go on (ack, delivery) once stored. */
  accept(
    client: Client | null,
    topic: string,
    payload: Buffer,
    qos: 0 | 1 | 2,
    messageId: number | undefined,
    done: Done,
    v5?: Mqtt5Fields,
  ): void {
    if (qos === 2 && client) {
      // A copy received before this connection is answered again by aedes, not stored again.
      storedBefore(this.persistence, client, isPersistent(client), messageId, (stored) => {
        if (stored) done(null);
        else this.enqueue(new IngestPublish(topic, payload, 2, client, done, v5));
      });
      return;
    }
    if (qos === 0 && this.unstoredQos0Bytes < MAX_UNSTORED_QOS0_BYTES) {
      // Nothing to acknowledge: pass the message on now and store it alongside.
      this.unstoredQos0Bytes += storedSize(topic, payload);
      if (client && this.unstoredQos0Bytes >= HOLD_QOS0_READS_BYTES) this.reads.hold(client);
      done(null);
      this.enqueue(new IngestPublish(topic, payload, 0, client, null, v5));
      return;
    }
    this.enqueue(new IngestPublish(topic, payload, qos, client, done, v5));
  }

  /**
   * Publishes that arrive in one turn of the event loop are appended together: one append (one
   * promise, one group-commit entry) per turn instead of per message.
   */
  private enqueue(pending: IngestPublish): void {
    this.pending.push(pending);
    if (this.pending.length === 1) setImmediate(() => this.flush());
    // One turn can bring ten thousand publishes: appending every FLUSH_EVERY of them at once lets
    // them die young (the log copies them) instead of surviving garbage collections until the turn ends.
    else if (this.pending.length >= FLUSH_EVERY) this.flush();
  }

  private flush(): void {
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    // Only publishes that wait for their append stay referenced until it completes; a QoS 0
    // publish already passed on is just counted.
    let passed = 0;
    let passedBytes = 0;
    const waiting: IngestPublish[] = [];
    for (const p of batch) {
      if (p.done) waiting.push(p);
      else {
        passed++;
        passedBytes += storedSize(p.topic, p.body);
      }
    }
    this.ctx.ingest(batch).then(
      () => {
        this.qos0Stored(passedBytes);
        for (const p of waiting) p.done?.(null);
      },
      (err: Error) => {
        this.qos0Stored(passedBytes);
        // Nothing to acknowledge and nothing the client could resend: counted (they reached local subscribers).
        if (passed > 0) this.ctx.countRejected(err instanceof BufferFullError ? err.reason : 'store_failed', passed);
        for (const p of waiting) this.notStored(p, err);
      },
    );
  }

  private qos0Stored(bytes: number): void {
    this.unstoredQos0Bytes -= bytes;
    // Released on the next turn: the log starts its next commit first, so the disk writes while
    // the released clients are read.
    if (this.reads.holding && this.unstoredQos0Bytes < HOLD_QOS0_READS_BYTES && !this.releaseQueued) {
      this.releaseQueued = true;
      setImmediate(() => {
        this.releaseQueued = false;
        this.reads.release();
      });
    }
  }

  private notStored(p: IngestPublish, err: Error): void {
    const full = err instanceof BufferFullError;
    if (full && p.qos > 0 && p.client && !isClosed(p.client) && !this.closing) {
      // Full (onFull: reject) or behind on writing: hold the acknowledgement until there is room.
      setTimeout(() => this.enqueue(p), RETRY_FULL_MS);
      return;
    }
    this.ctx.countRejected(full ? err.reason : 'store_failed');
    if (p.qos === 0) {
      // Nothing to acknowledge and nothing the client could resend: counted, and passed on to local subscribers.
      p.done?.(null);
      return;
    }
    this.ctx.logger.error({ err: err.message, topic: p.topic }, 'publish not stored; not acknowledged (the client will resend)');
    p.done?.(err);
  }
}

/**
 * A publish on an ingest topic, waiting for its append; it is the event itself. The log stores the
 * body as received; the payload is parsed only if something here looks at it (analytics, the
 * dashboard), so intake parses nothing.
 */
class IngestPublish implements EventInput {
  readonly source = 'mqtt';
  readonly userProperties?: Record<string, string | string[]>;
  readonly contentType?: string;
  private parsed: { payload: unknown } | undefined;

  constructor(
    readonly topic: string,
    readonly body: Buffer,
    readonly qos: 0 | 1 | 2,
    readonly client: Client | null,
    /** Lets aedes go on (PUBACK, delivery) once stored; null for a QoS 0 publish passed on already. */
    readonly done: Done | null,
    v5?: Mqtt5Fields,
  ) {
    if (v5?.userProperties !== undefined) this.userProperties = v5.userProperties;
    if (v5?.contentType !== undefined) this.contentType = v5.contentType;
  }

  get payload(): unknown {
    this.parsed ??= payloadFromBody(this.body);
    return this.parsed.payload;
  }
}

/** Roughly what a publish takes in the ring log's commit buffer. */
function storedSize(topic: string, body: Buffer): number {
  return topic.length + body.length + 64;
}
