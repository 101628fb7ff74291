/**
 * When commits run (buffer/SPEC.md "Append and group commit"): leader/follower group commit, as
 * LevelDB's writer queue does it. The first append to arrive while the log is idle starts a commit
 * at once (after the current I/O phase, so appends read from the same socket data join it); appends
 * that arrive while a commit is in flight wait and all go in the next one, which starts as soon as
 * the one in flight is durable. The batch size adapts to the load by itself: one event per commit
 * when it is quiet, hundreds when it is busy, and no timer stands between an append and its fsync.
 *
 * The one wait, when buffer.maxFsyncsPerSecond is set (it is not by default): an fsync starts at
 * least 1/maxFsyncsPerSecond after the previous one started, to bound the fsyncs a second on a worn
 * SD card (each is at least a page written, whatever it carries), unless `commitEvents` events are
 * waiting. Writes without an fsync (cursors only) do not wait.
 *
 * This object decides only when; the log's `commit` does the work (one write batch) and says
 * whether that batch was fsynced.
 */
export interface CommitWork {
  /** Events waiting for their commit. */
  waiting(): number;
  /** Something other than events needs writing (cursors, quarantine, maintenance). */
  needsWrite(): boolean;
  /** False while the database is closed or failed. */
  canWrite(): boolean;
  /** Writes one batch; resolves true when it was fsynced. */
  commit(): Promise<boolean>;
}

export class GroupCommit {
  private writing = false;
  private queued = false;
  private timer: NodeJS.Timeout | null = null;
  private lastSyncAt = Number.NEGATIVE_INFINITY;
  private readonly gapMs: number;
  private draining = false;

  constructor(
    maxFsyncsPerSecond: number | undefined,
    private readonly commitEvents: number,
    private readonly work: CommitWork,
  ) {
    this.gapMs = maxFsyncsPerSecond ? 1000 / maxFsyncsPerSecond : 0;
  }

  get busy(): boolean {
    return this.writing;
  }

  /** Something arrived (an append, a cursor, a damaged chunk): start a commit now or when due. */
  kick(): void {
    if (this.writing || this.queued || !this.work.canWrite()) return;
    const wait = this.wait();
    if (wait === null) return;
    if (wait > 0) {
      this.timer ??= setTimeout(() => {
        this.timer = null;
        this.kick();
      }, wait);
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.queued = true;
    // setImmediate, not a microtask: appends arriving in the same I/O phase join this commit.
    setImmediate(() => void this.run());
  }

  /** ms until the next commit may start (0: now), or null when there is nothing to write. */
  private wait(): number | null {
    const waiting = this.work.waiting();
    if (waiting === 0) return this.work.needsWrite() ? 0 : null;
    if (this.draining || waiting >= this.commitEvents) return 0;
    return Math.max(0, this.lastSyncAt + this.gapMs - performance.now());
  }

  /** The leader's loop: commit while something is due, one batch in flight at a time. */
  private async run(): Promise<void> {
    this.queued = false;
    if (this.writing) return;
    this.writing = true;
    try {
      for (;;) {
        if (!this.work.canWrite() || this.wait() !== 0) break;
        const startedAt = performance.now();
        if (await this.work.commit()) this.lastSyncAt = startedAt;
      }
    } finally {
      this.writing = false;
    }
    this.kick();
  }

  /** Commits everything waiting now, ignoring the fsync bound (close). */
  async drain(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    while (this.writing || this.queued) await new Promise((r) => setTimeout(r, 2));
    this.draining = true;
    await this.run();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
