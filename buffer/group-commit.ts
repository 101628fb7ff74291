/**
 * When commits run (buffer/SPEC.md "Append and group commit"): leader/follower group commit, as
 * LevelDB's writer queue does it. The first append to arrive while the log is idle starts a commit
 * at once (after the current I/O phase, so appends read from the same socket data join it); appends
 * that arrive while a commit is in flight wait and all go in the next one, which starts as soon as
 * the one in flight is durable. The batch size adapts to the load by itself: one event per commit
 * when it is quiet, hundreds when it is busy, and no timer stands between an append and its fsync.
 *
 * The one wait: fsyncs are bounded to `maxFsyncsPerSecond` on average, to spare SD cards (each
 * fsync writes at least a page, whatever it carries). The bound is a token bucket, not a least gap
 * between fsyncs: a commit waits only when the log has used up its burst (a twentieth of a second's
 * worth), so a load whose commits already stay within the bound is never held back, and PUBACKs do
 * not wait for a gap the disk did not need. `commitEvents` waiting events skip the wait. Writes
 * without an fsync (cursors only) do not wait.
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
  /** Fsyncs the bucket allows now (refilled at the bound's rate, up to `burst`). */
  private tokens: number;
  private filledAt = performance.now();
  private readonly burst: number;
  private draining = false;

  constructor(
    private readonly maxFsyncsPerSecond: number,
    private readonly commitEvents: number,
    private readonly work: CommitWork,
  ) {
    this.burst = Math.max(1, Math.ceil(maxFsyncsPerSecond / 20));
    this.tokens = this.burst;
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
    this.refill();
    return this.tokens >= 1 ? 0 : ((1 - this.tokens) * 1000) / this.maxFsyncsPerSecond;
  }

  private refill(): void {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.filledAt) * this.maxFsyncsPerSecond) / 1000);
    this.filledAt = now;
  }

  /** The leader's loop: commit while something is due, one batch in flight at a time. */
  private async run(): Promise<void> {
    this.queued = false;
    if (this.writing) return;
    this.writing = true;
    try {
      for (;;) {
        if (!this.work.canWrite() || this.wait() !== 0) break;
        // A commit let through by `commitEvents` (or on close) borrows nothing it must pay back later.
        if (await this.work.commit()) this.tokens = Math.max(0, this.tokens - 1);
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
