/**
 * Which local consumer names exist, who may create one, and what happens to one that goes idle.
 *
 * - A name exists when it is declared (`consumers`), has a persisted cursor `local:NAME` from
 *   before the start, was released for idleness, or was created by a client that may create names:
 *   one the HTTP guard authenticated (basic auth) or trusted (loopback); without a guard, only a
 *   loopback peer. Anyone else asking for an unknown name is refused (403), so no anonymous or
 *   cross-site request can pin a cursor in the ring log.
 * - Bounded: at most `maxConsumers` names hold a cursor (429 beyond).
 * - An idle consumer (no open request and no ack for `idleTimeout`) must not hold the log: its
 *   cursor is dropped, so it no longer holds back eviction (or, with onFull: reject, intake) and
 *   frees its slot; counted and logged. Its committed seq is remembered in memory (bounded), so
 *   when it comes back before a restart it resumes after its last ack (events evicted meanwhile
 *   are skipped); after a restart it starts from the oldest event held (at least once).
 */
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { RingLog } from '../../buffer/types.js';
import { isLoopback } from '../../src/auth/origin.js';
import { principalOf } from '../../src/auth/request-guard.js';
import { HttpError } from '../../src/core/http-server.js';
import { ConsumerGroup } from './group.js';
import type { LocalConsumersConfig } from './schema.js';

export const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const MAX_RELEASED = 256;
const PREFIX = 'local:';

/** Whether this request may create or remove a consumer name (see the file comment). */
export function mayCreate(req: IncomingMessage): boolean {
  const p = principalOf(req);
  return p === undefined ? isLoopback(req.socket.remoteAddress) : p === 'user' || p === 'loopback';
}

export class ConsumerNames {
  readonly groups = new Map<string, ConsumerGroup>();
  /** Persisted cursors nobody has read since the start → since when (released when idle too). */
  private readonly dormant = new Map<string, number>();
  /** Names released for idleness → their committed seq, to resume there. */
  private readonly released = new Map<string, number>();
  /** Groups being opened (a released name's cursor is restored first). */
  private readonly opening = new Map<string, Promise<ConsumerGroup>>();
  private readonly sweep: NodeJS.Timeout;
  idleReleased = 0;

  constructor(
    private readonly log: RingLog,
    private readonly config: LocalConsumersConfig,
    private readonly logger: Logger,
    private readonly onIdleRelease?: () => void,
  ) {
    const now = Date.now();
    for (const r of log.readerStats()) if (r.name.startsWith(PREFIX)) this.dormant.set(r.name.slice(PREFIX.length), now);
    this.sweep = setInterval(
      () => void this.releaseIdle().catch((err) => logger.error({ err }, 'idle consumer release failed')),
      Math.min(60_000, Math.max(250, config.idleTimeout / 4)),
    );
    this.sweep.unref();
  }

  /**
   * The group of consumer `raw`; `create`: a reader may bring a new name into being (if its client
   * may), an ack may not (a name never read was handed nothing).
   */
  async open(raw: string | null, req: IncomingMessage, create: boolean): Promise<ConsumerGroup> {
    const name = this.validName(raw);
    const g = this.groups.get(name);
    if (g) return g;
    const pending = this.opening.get(name);
    if (pending) return pending;
    const declared = this.config.consumers?.includes(name) ?? false;
    const exists = declared || this.dormant.has(name) || this.released.has(name);
    if (!exists && !create) throw new HttpError(400, `consumer "${name}" was never handed any event`);
    if (!exists && !mayCreate(req))
      throw new HttpError(
        403,
        `consumer "${name}" does not exist: declare it in http.consumers.consumers, or read it first as an authenticated client`,
      );
    const held = this.groups.size + this.opening.size + this.dormant.size - (this.dormant.has(name) ? 1 : 0);
    if (held >= this.config.maxConsumers)
      throw new HttpError(429, `too many consumer names (maxConsumers ${this.config.maxConsumers}); "${name}" was refused`);
    const opened = this.create(name, exists);
    this.opening.set(name, opened);
    try {
      return await opened;
    } finally {
      this.opening.delete(name);
    }
  }

  /** Removes a name: its cursor and its slot (409 while requests read under it). */
  async remove(name: string): Promise<void> {
    const g = this.groups.get(name);
    if (g && g.openRequests > 0)
      throw new HttpError(409, `consumer "${name}" has ${g.openRequests} open request(s); close them first`);
    g?.close();
    this.groups.delete(name);
    this.dormant.delete(name);
    this.released.delete(name);
    await this.log.dropReader(`${PREFIX}${name}`);
  }

  /** Releases every consumer idle for `idleTimeout` (see the file comment); runs on a timer. */
  async releaseIdle(now = Date.now()): Promise<void> {
    const idle: [string, number][] = [];
    for (const g of this.groups.values())
      if (g.openRequests === 0 && now - g.lastActivity >= this.config.idleTimeout)
        idle.push([g.name, g.reader.stats().committedSeq]);
    for (const [name, since] of this.dormant)
      if (now - since >= this.config.idleTimeout) idle.push([name, this.committedOf(name)]);
    for (const [name, committed] of idle) {
      this.groups.get(name)?.close();
      this.groups.delete(name);
      this.dormant.delete(name);
      this.released.set(name, committed);
      if (this.released.size > MAX_RELEASED) this.released.delete(this.released.keys().next().value as string);
      await this.log.dropReader(`${PREFIX}${name}`);
      this.idleReleased++;
      this.onIdleRelease?.();
      this.logger.warn(
        { consumer: name, committedSeq: committed, idleTimeout: this.config.idleTimeout },
        'local consumer idle: its cursor no longer holds the log (it resumes after its last ack if it comes back)',
      );
    }
  }

  close(): void {
    clearInterval(this.sweep);
    for (const g of this.groups.values()) g.close();
  }

  private validName(name: string | null): string {
    if (!name) throw new HttpError(400, 'the consumer parameter is required (e.g. ?consumer=historian)');
    if (!NAME.test(name))
      throw new HttpError(400, `consumer "${name.slice(0, 80)}" is not a valid name (1-64 letters, digits, "-", "_" or ".")`);
    if (this.config.consumers && !this.config.consumers.includes(name))
      throw new HttpError(404, `consumer "${name}" is not configured`);
    return name;
  }

  private async create(name: string, existed: boolean): Promise<ConsumerGroup> {
    const reader = this.log.reader(`${PREFIX}${name}`);
    const resumeAt = this.released.get(name);
    this.released.delete(name);
    this.dormant.delete(name);
    // Back from an idle release: carry on after what it had acknowledged, not from the oldest event.
    if (resumeAt !== undefined && resumeAt > reader.stats().committedSeq) await reader.commit(resumeAt);
    const g = new ConsumerGroup(name, reader, { maxInFlight: this.config.maxInFlight, ackTimeoutMs: this.config.ackTimeout });
    this.groups.set(name, g);
    if (!existed) this.logger.info({ consumer: name }, 'local consumer created');
    return g;
  }

  private committedOf(name: string): number {
    return this.log.readerStats().find((r) => r.name === `${PREFIX}${name}`)?.committedSeq ?? 0;
  }
}
