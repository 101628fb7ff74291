/**
 * A bandwidth cap (bytes/s) as a token bucket. The balance is topped up at the cap's rate and holds at
 * most one second of budget, so a quiet spell buys at most a one-second burst. A send waits until the
 * balance is positive and is charged afterwards with the bytes it put on the wire (known only once the
 * sink has encoded and compressed the batch): a big batch drives the balance negative and the next one
 * waits, so the long-run rate stays at the cap.
 */
import { sleep } from './backoff.js';

export class TokenBucket {
  private tokens: number;
  private last = Date.now();

  constructor(private readonly bytesPerSecond: number) {
    this.tokens = bytesPerSecond;
  }

  /** Resolves when the balance is positive (early when `signal` aborts). */
  async ready(signal?: AbortSignal): Promise<void> {
    for (;;) {
      this.refill();
      if (this.tokens > 0 || signal?.aborted) return;
      await sleep(Math.ceil((-this.tokens / this.bytesPerSecond) * 1000) + 1, signal);
    }
  }

  spend(bytes: number): void {
    this.refill();
    this.tokens -= bytes;
  }

  private refill(): void {
    const now = Date.now();
    this.tokens = Math.min(this.bytesPerSecond, this.tokens + ((now - this.last) / 1000) * this.bytesPerSecond);
    this.last = now;
  }
}
