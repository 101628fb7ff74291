/**
 * Liveness (`GET /healthz`, the systemd watchdog): is this process able to do its job at all? The
 * process answers (it is alive), its event loop is responsive (no stall longer than `maxStallMs`
 * in the last window) and the ring log is open and writable. Nothing about peers: an uplink down is
 * the gateway's *condition* (condition.ts), and restarting the process would not bring it back.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

export interface Liveness {
  ok: boolean;
  reasons: string[];
  /** The longest event loop stall seen in the last complete window, ms. */
  eventLoopMaxDelayMs: number;
}

export class LivenessProbe {
  private readonly histogram: IntervalHistogram;
  private readonly timer: NodeJS.Timeout;
  /** The previous window's worst stall (a window that just started has seen too little). */
  private lastMaxMs = 0;

  constructor(
    private readonly logWritable: () => boolean,
    private readonly maxStallMs = 5000,
    windowMs = 10_000,
  ) {
    this.histogram = monitorEventLoopDelay({ resolution: 20 });
    this.histogram.enable();
    this.timer = setInterval(() => {
      this.lastMaxMs = this.histogram.max / 1e6;
      this.histogram.reset();
    }, windowMs);
    this.timer.unref();
  }

  check(): Liveness {
    const reasons: string[] = [];
    const stall = Math.max(this.lastMaxMs, this.histogram.max / 1e6);
    if (!this.logWritable()) reasons.push('the ring log is not open for writing');
    if (stall > this.maxStallMs) reasons.push(`the event loop stalled for ${Math.round(stall)} ms`);
    return { ok: reasons.length === 0, reasons, eventLoopMaxDelayMs: Math.round(stall) };
  }

  close(): void {
    clearInterval(this.timer);
    this.histogram.disable();
  }
}
