/**
 * A named set of running components built from config entries (drivers, uplinks). `reconcile`
 * applies a new list with the least disruption: entries whose config is unchanged keep running,
 * removed ones stop, changed ones are replaced, new ones start. This is what lets a fleet config
 * change one driver without touching the broker, the log or the other drivers.
 */
export interface Lifecycle {
  start(): Promise<void>;
  stop(): Promise<void>;
}

export class ComponentSet<C extends { name: string }, I extends Lifecycle> {
  private readonly running = new Map<string, { config: C; instance: I }>();

  /** `runDisabled`: entries with `enabled: false` are built too (uplinks show in status as disabled). */
  constructor(
    private readonly build: (config: C) => Promise<I>,
    private readonly opts: { runDisabled?: boolean } = {},
  ) {}

  get(name: string): I | undefined {
    return this.running.get(name)?.instance;
  }

  instances(): I[] {
    return [...this.running.values()].map((r) => r.instance);
  }

  /**
   * Brings the running set in line with `configs`. Every change is attempted; the errors of those
   * that failed are thrown together afterwards (a failed start leaves that entry not running).
   */
  async reconcile(configs: readonly C[]): Promise<void> {
    const wanted = new Map(configs.map((c) => [c.name, c]));
    const errors: string[] = [];
    for (const [name, { config, instance }] of [...this.running]) {
      const next = wanted.get(name);
      if (next && sameConfig(next, config)) continue;
      this.running.delete(name);
      await instance.stop().catch((err) => errors.push(`${name}: stop failed: ${(err as Error).message}`));
    }
    for (const config of configs) {
      if (this.running.has(config.name)) continue;
      if ((config as { enabled?: boolean }).enabled === false && !this.opts.runDisabled) continue;
      try {
        const instance = await this.build(config);
        await instance.start();
        this.running.set(config.name, { config, instance });
      } catch (err) {
        errors.push(`${config.name}: ${(err as Error).message}`);
      }
    }
    if (errors.length) throw new Error(errors.join('; '));
  }

  async stopAll(): Promise<void> {
    const all = [...this.running.values()];
    this.running.clear();
    await Promise.allSettled(all.map((r) => r.instance.stop()));
  }
}

export function sameConfig(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
