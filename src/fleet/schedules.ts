/**
 * Schedules (`schedules:` in the config): cron expressions (parsed and matched by node-cron) that
 * run an action: publish the fleet state or status, or run a command.
 *
 * The timer is ours, not node-cron's: node-cron, when it wakes late, walks every slot it missed
 * one by one, and when NTP moves a Pi's clock from 1970 to today that is decades of slots (minutes
 * of CPU and a list of millions). Here each schedule keeps the next slot it expects, wakes at least
 * every 10 s, and:
 * - runs the slot when it is due and at most `toleranceMs` late (one run, never a burst);
 * - skips it, with one log line and a counter, when it is later than that (the clock jumped forward
 *   or the process was stalled), and plans the next slot from the new time;
 * - re-plans when the clock moved back (the expected slot is further away than the next match).
 * A run that is still busy when the next slot comes makes that slot skip (no overlap).
 */
import cron from 'node-cron';
import type { Logger } from 'pino';
import type { ScheduleConfig } from './schema.js';

export type ScheduleRunner = (schedule: ScheduleConfig) => Promise<void>;

export interface ScheduleStatus {
  name: string;
  cron: string;
  action: string;
  nextRun: string | null;
  runs: number;
  failures: number;
  skipped: number;
  lastRunAt: number | null;
  lastError: string | null;
}

// Short enough to notice a clock that moved back within a few seconds; a wake costs one cron match.
const MAX_SLEEP_MS = 10_000;

class Job {
  private timer?: NodeJS.Timeout;
  private expected = 0;
  private busy = false;
  readonly stats = {
    runs: 0,
    failures: 0,
    skipped: 0,
    lastRunAt: null as number | null,
    lastError: null as string | null,
  };
  private readonly matcher: ReturnType<typeof cron.createTask>;

  constructor(
    readonly config: ScheduleConfig,
    private readonly run: ScheduleRunner,
    private readonly logger: Logger,
    private readonly toleranceMs: number,
  ) {
    // A task that is never started: only its matcher is used (getNextRuns is computed from "now").
    this.matcher = cron.createTask(config.cron, () => {}, { timezone: config.timezone, name: config.name });
  }

  private nextMatch(): number {
    return this.matcher.getNextRuns(1)[0].getTime();
  }

  start(): void {
    this.expected = this.nextMatch();
    this.arm();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    void this.matcher.destroy();
  }

  private arm(): void {
    const delay = Math.min(Math.max(0, this.expected - Date.now()), MAX_SLEEP_MS);
    this.timer = setTimeout(() => this.wake(), delay);
    this.timer.unref();
  }

  private wake(): void {
    const now = Date.now();
    if (now >= this.expected) {
      const late = now - this.expected;
      if (late > this.toleranceMs) {
        this.stats.skipped++;
        this.logger.warn(
          { schedule: this.config.name, lateMs: late },
          'schedule skipped a run: the clock jumped forward or the process was stalled; planning from the current time',
        );
      } else if (this.busy) {
        this.stats.skipped++;
        this.logger.warn({ schedule: this.config.name }, 'schedule skipped a run: the previous run is still busy');
      } else {
        void this.execute();
      }
      this.expected = this.nextMatch();
    } else {
      const next = this.nextMatch();
      if (next < this.expected) this.expected = next; // the clock moved back
    }
    if (this.timer) this.arm();
  }

  private async execute(): Promise<void> {
    this.busy = true;
    this.stats.lastRunAt = Date.now();
    try {
      await this.run(this.config);
      this.stats.runs++;
    } catch (err) {
      this.stats.failures++;
      this.stats.lastError = (err as Error).message;
      this.logger.warn({ schedule: this.config.name, err: this.stats.lastError }, 'scheduled action failed');
    } finally {
      this.busy = false;
    }
  }

  status(): ScheduleStatus {
    return {
      name: this.config.name,
      cron: this.config.cron,
      action: this.config.action,
      nextRun: this.timer ? new Date(this.expected).toISOString() : null,
      ...this.stats,
    };
  }
}

export class Scheduler {
  private jobs: Job[] = [];

  constructor(
    private readonly run: ScheduleRunner,
    private readonly logger: Logger,
    private readonly toleranceMs = 30_000,
  ) {}

  /** Replaces the running schedules with `schedules` (all of them restart). */
  set(schedules: readonly ScheduleConfig[]): void {
    this.stop();
    this.jobs = schedules.map((s) => new Job(s, this.run, this.logger, this.toleranceMs));
    for (const j of this.jobs) j.start();
  }

  stop(): void {
    for (const j of this.jobs) j.stop();
    this.jobs = [];
  }

  status(): ScheduleStatus[] {
    return this.jobs.map((j) => j.status());
  }
}
