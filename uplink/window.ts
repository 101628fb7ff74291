/**
 * Transmit windows: a set of node-cron expressions; the window is open during every minute (or second,
 * for 6-field expressions) that one of them matches, in local time. E.g. `"* 0-5 * * *"` opens the
 * link from 00:00 to 05:59 for a metered link that is cheap at night.
 */
import { createTask, type ScheduledTask } from 'node-cron';

export class TransmitWindows {
  private readonly tasks: ScheduledTask[];

  constructor(expressions: string[]) {
    // createTask parses without scheduling; only `match` is used. destroy() unregisters them.
    this.tasks = expressions.map((e) => createTask(e, () => {}));
  }

  isOpen(now = new Date()): boolean {
    // Matching is per second for 6-field expressions; round to the minute for the 5-field ones, whose
    // seconds field is 0.
    return this.tasks.some((t) => {
      const d = new Date(now);
      if (t.getPattern().trim().split(/\s+/).length === 5) d.setSeconds(0, 0);
      return t.match(d);
    });
  }

  /** Milliseconds until the next check is worth doing (the start of the next second/minute). */
  msToNextCheck(now = Date.now()): number {
    const sixFields = this.tasks.some((t) => t.getPattern().trim().split(/\s+/).length === 6);
    const unit = sixFields ? 1000 : 60_000;
    return unit - (now % unit) + 5;
  }

  close(): void {
    for (const t of this.tasks) void t.destroy();
  }
}
