/**
 * Wall-clock sanity for devices without an RTC (a Pi boots in 1970 until NTP syncs). Events
 * stamped before the clock looks synced carry `clockUnsynced`; once it syncs, the offset between
 * the wall clock this process started with and the real one is known (monotonic time did not
 * jump), and events stamped by this process are corrected by it when read.
 */

/** A wall clock before 2020-01-01 is taken as "not synced yet". */
export const SYNCED_AFTER = Date.UTC(2020, 0, 1);

export class ClockWatch {
  /** Wall clock and monotonic clock sampled together at the first unsynced stamp. */
  private baseWall = 0;
  private baseMono = 0;
  private sawUnsynced = false;
  /** Correction (ms) for events this process stamped while unsynced, once known. */
  offset: number | null = null;

  constructor(private readonly now: () => number = Date.now) {}

  /**
   * True when `ts` looks like it came from an unsynced clock. When the gateway's own clock is the
   * unsynced one, its monotonic position is remembered so the correction can be learnt later; a
   * producer's stale timestamp under a synced gateway clock is flagged but has no correction.
   */
  unsynced(ts: number): boolean {
    if (ts >= SYNCED_AFTER) return false;
    if (!this.sawUnsynced) {
      const wall = this.now();
      if (wall < SYNCED_AFTER) {
        this.sawUnsynced = true;
        this.baseWall = wall;
        this.baseMono = performance.now();
      }
    }
    return true;
  }

  /** True when unsynced stamps were made and the clock now looks synced (poll() will learn the offset). */
  syncPending(): boolean {
    return this.sawUnsynced && this.offset === null && this.now() >= SYNCED_AFTER;
  }

  /**
   * Checks whether the clock synced since unsynced stamps were made; returns the correction the
   * first time it becomes known (the caller persists it), else null.
   */
  poll(): number | null {
    if (!this.sawUnsynced || this.offset !== null) return null;
    const wall = this.now();
    if (wall < SYNCED_AFTER) return null;
    // What the unsynced wall clock would read now, had it kept running with the monotonic clock.
    const unsyncedNow = this.baseWall + (performance.now() - this.baseMono);
    this.offset = Math.round(wall - unsyncedNow);
    return this.offset;
  }
}
