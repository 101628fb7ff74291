/**
 * Commands waiting to run: one at a time, in arrival order, at most `max` waiting (a push beyond
 * it is refused, so whatever is published to the command topic, memory stays bounded).
 */
export class SerialQueue<T> {
  private readonly items: T[] = [];
  private draining = false;
  /** Settles when the queue has run dry (awaited at stop). */
  idle: Promise<void> = Promise.resolve();

  constructor(
    private readonly handle: (item: T) => Promise<void>,
    private readonly onError: (err: Error) => void,
  ) {}

  get length(): number {
    return this.items.length;
  }

  /** Queues `item` unless `max` are already waiting; false when refused. */
  push(item: T, max: number): boolean {
    if (this.items.length >= max) return false;
    this.items.push(item);
    if (!this.draining) this.idle = this.drain();
    return true;
  }

  clear(): void {
    this.items.length = 0;
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      for (let item = this.items.shift(); item !== undefined; item = this.items.shift()) {
        try {
          await this.handle(item);
        } catch (err) {
          this.onError(err as Error);
        }
      }
    } finally {
      this.draining = false;
    }
  }
}
