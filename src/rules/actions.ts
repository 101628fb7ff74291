/**
 * What a rule does besides its event: publish on the local broker, write to a device. Each is
 * rate-limited on its own (`minInterval`, the rest counted as suppressed) and fire-and-forget:
 * a failure is counted and logged, never reaches intake.
 *
 * Device writes go through `DeviceWriter`, which the gateway wires to its safe write path
 * (drivers/write: writable points only, limits, rate limit, audit). Without one (an offline replay)
 * a write is counted as `unavailable` and logged: a rule never talks to a device around that path.
 */

/** The safe write path as rules see it. `target` names a writable point the way the writer's config does. */
export interface DeviceWriter {
  write(target: string, value: unknown, origin: { rule: string; key: string }): Promise<void>;
}


export class RateLimit {
  private lastAt = Number.NEGATIVE_INFINITY;
  constructor(private readonly minInterval: number) {}

  /** True when the action may run at `now` (and records it). */
  take(now: number): boolean {
    if (now - this.lastAt < this.minInterval) return false;
    this.lastAt = now;
    return true;
  }
}

/** `{rule}`, `{topic}`, `{key}` in a topic template; a key's `/`, `+`, `#` become `_` so it stays one level. */
export function fillTopic(template: string, rule: string, topic: string, key: string): string {
  return template
    .replaceAll('{rule}', rule)
    .replaceAll('{topic}', topic)
    .replaceAll('{key}', key.replace(/[/+#\u0000]/g, '_'));
}
