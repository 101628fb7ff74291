/**
 * The system driver: the gateway's own health as readings, every `interval`: CPU temperature
 * (`/sys/class/thermal`), load averages, memory, free space of the data directory, and on a
 * Raspberry Pi the under-voltage and throttling flags of `vcgencmd get_throttled`.
 *
 * Guarantees: a source the board does not have (no thermal zone, no vcgencmd) is not reported,
 * rather than reported as zero; a source that fails is counted by reason and the others are still
 * reported. The board is one device, `system`; it is `up` once a sample succeeded.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile, statfs } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import type { EventInput } from '../../src/core/event.js';
import { DeviceTracker, Sleeper, statusEvent, untilDeadline } from '../device-health.js';
import type { Driver, DriverContext, DriverHealth } from '../driver.js';
import type { SystemConfig } from './schema.js';

/** Where the driver looks; tests point these at a fake tree. */
export interface SystemSources {
  thermalDir: string;
  meminfo: string;
  vcgencmd: string;
}

const DEFAULT_SOURCES: SystemSources = {
  thermalDir: '/sys/class/thermal',
  meminfo: '/proc/meminfo',
  vcgencmd: 'vcgencmd',
};

interface Sample {
  metric: string;
  value: unknown;
  unit?: string;
  extra?: Record<string, unknown>;
}

export class SystemDriver implements Driver {
  readonly name: string;
  readonly type = 'system';
  private readonly tracker = new DeviceTracker('system', 3);
  private readonly sleeper = new Sleeper();
  private ctx?: DriverContext;
  private loop?: Promise<void>;
  private stopping = false;
  /** Set once vcgencmd turned out not to exist: not tried again. */
  private noVcgencmd = false;

  constructor(
    private readonly config: SystemConfig,
    private readonly sources: SystemSources = DEFAULT_SOURCES,
  ) {
    this.name = config.name;
  }

  async start(ctx: DriverContext): Promise<void> {
    this.ctx = ctx;
    this.loop = this.run();
  }

  async stop(deadline: number): Promise<void> {
    this.stopping = true;
    this.sleeper.abort();
    await untilDeadline(this.loop ?? Promise.resolve(), deadline);
    this.tracker.set('stopped');
  }

  health(): DriverHealth {
    return { name: this.name, type: this.type, devices: [this.tracker.snapshot()] };
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      const started = Date.now();
      try {
        await this.sampleOnce();
      } catch (err) {
        this.tracker.count('internal', (err as Error).message);
      }
      if (this.stopping) break;
      await this.sleeper.sleep(Math.max(0, this.config.interval - (Date.now() - started)));
    }
  }

  /** Takes one sample of every source and emits it as one batch. */
  private async sampleOnce(): Promise<void> {
    const now = Date.now();
    const samples: Sample[] = [];
    const failed: string[] = [];
    const attempt = async (reason: string, f: () => Promise<Sample[]>) => {
      try {
        samples.push(...(await f()));
      } catch (err) {
        failed.push(reason);
        this.tracker.count(reason, `${reason}: ${(err as Error).message}`);
      }
    };
    await Promise.all([
      attempt('thermal', () => this.thermal()),
      attempt('load', async () => this.load()),
      attempt('memory', () => this.memory()),
      attempt('disk', () => this.disk()),
      attempt('vcgencmd', () => this.throttled()),
    ]);
    const prefix = this.config.topicPrefix;
    const source = `system:${this.name}`;
    const events: EventInput[] = samples.map((s) => ({
      source,
      topic: `${prefix}/${s.metric}`,
      kind: 'reading',
      ts: now,
      payload: { value: s.value, ...(s.unit !== undefined ? { unit: s.unit } : {}), ...s.extra },
    }));
    const previous =
      samples.length > 0
        ? this.tracker.success(now, failed.length > 0)
        : this.tracker.failure('no-source', 'no source could be read');
    if (events.length) this.tracker.lastReading = { topic: events[0].topic, value: samples[0].value, ts: now };
    if (previous !== undefined) events.push(statusEvent(this, this.tracker, previous, now));
    if (!this.ctx || events.length === 0) return;
    try {
      await this.ctx.emit(events);
    } catch (err) {
      this.tracker.count('emit', `readings not stored: ${(err as Error).message}`);
    }
  }

  /** The CPU's thermal zone (`cpu-thermal` on a Pi, `x86_pkg_temp` on a PC), else the first one. */
  private async thermal(): Promise<Sample[]> {
    let zones: string[];
    try {
      zones = (await readdir(this.sources.thermalDir)).filter((z) => z.startsWith('thermal_zone')).sort();
    } catch {
      return []; // no thermal class: not reported
    }
    if (zones.length === 0) return [];
    const types = await Promise.all(
      zones.map((z) => readFile(join(this.sources.thermalDir, z, 'type'), 'utf8').catch(() => '')),
    );
    const i = Math.max(
      0,
      types.findIndex((t) => /cpu|soc|x86_pkg/i.test(t)),
    );
    const milli = Number((await readFile(join(this.sources.thermalDir, zones[i], 'temp'), 'utf8')).trim());
    if (!Number.isFinite(milli)) throw new Error(`${zones[i]}/temp is not a number`);
    return [{ metric: 'cpu_temp', value: milli / 1000, unit: '°C' }];
  }

  private load(): Sample[] {
    const [l1, l5, l15] = loadavg();
    const cores = cpus().length || 1;
    return [
      { metric: 'load1', value: round(l1, 2), extra: { perCore: round(l1 / cores, 3) } },
      { metric: 'load5', value: round(l5, 2) },
      { metric: 'load15', value: round(l15, 2) },
    ];
  }

  /** MemAvailable, not MemFree: the page cache is reclaimable and a Pi keeps a lot of it. */
  private async memory(): Promise<Sample[]> {
    const text = await readFile(this.sources.meminfo, 'utf8');
    const kb = (key: string) => {
      const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
      return m ? Number(m[1]) * 1024 : undefined;
    };
    const total = kb('MemTotal') ?? totalmem();
    const available = kb('MemAvailable');
    if (available === undefined) throw new Error('no MemAvailable in meminfo');
    return [
      { metric: 'memory_used', value: round((100 * (total - available)) / total, 1), unit: '%' },
      { metric: 'memory_available', value: available, unit: 'B' },
    ];
  }

  private async disk(): Promise<Sample[]> {
    const path = this.config.diskPath ?? this.ctx?.dataDir ?? '.';
    const s = await statfs(path);
    const free = s.bavail * s.bsize;
    const total = s.blocks * s.bsize;
    return [
      { metric: 'disk_free', value: free, unit: 'B', extra: { path } },
      { metric: 'disk_free_percent', value: total > 0 ? round((100 * free) / total, 1) : null, unit: '%' },
    ];
  }

  /** `throttled=0x50005`: bit 0 under-voltage now, 1 ARM frequency capped, 2 throttled, 3 soft temperature limit; bits 16-19 the same "has occurred since boot". */
  private async throttled(): Promise<Sample[]> {
    if (this.noVcgencmd) return [];
    const out = await new Promise<string | undefined>((resolve, reject) => {
      execFile(this.sources.vcgencmd, ['get_throttled'], { timeout: 2000 }, (err, stdout) => {
        if ((err as NodeJS.ErrnoException | null)?.code === 'ENOENT') resolve(undefined);
        else if (err) reject(err);
        else resolve(stdout);
      });
    });
    if (out === undefined) {
      this.noVcgencmd = true;
      return [];
    }
    const m = /throttled=(0x[0-9a-fA-F]+)/.exec(out);
    if (!m) throw new Error(`unexpected output ${JSON.stringify(out.trim().slice(0, 60))}`);
    const v = Number.parseInt(m[1], 16);
    const bit = (b: number) => ((v >> b) & 1) === 1;
    return [
      {
        metric: 'throttled',
        value: v,
        extra: {
          underVoltage: bit(0),
          frequencyCapped: bit(1),
          throttled: bit(2),
          softTempLimit: bit(3),
          underVoltageOccurred: bit(16),
          frequencyCappedOccurred: bit(17),
          throttledOccurred: bit(18),
          softTempLimitOccurred: bit(19),
        },
      },
    ];
  }
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
