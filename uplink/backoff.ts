/** Delays for retries and reconnects: exponential backoff with full jitter, and cancellable sleeps. */

/**
 * Full jitter (AWS architecture blog, "Exponential Backoff And Jitter"): a uniform delay in
 * [0, min(cap, base * 2^attempt)]. It spreads a fleet's retries after a shared outage.
 */
export function fullJitter(attempt: number, baseMs: number, capMs: number, random = Math.random): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/** A uniform delay in [min, max]: reconnects after an outage do not all land at once. */
export function jitterBetween(minMs: number, maxMs: number, random = Math.random): number {
  return Math.floor(minMs + random() * Math.max(0, maxMs - minMs));
}

/** Sleeps `ms`, or less when `signal` aborts (never rejects). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted || ms <= 0) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
