/**
 * A rule with `group`: readings become per-device vectors (align.ts) judged by one vector detector
 * per device. The device is the first `deviceLevels` topic levels; the variable is the rest of the
 * topic, with `.field` per listed field. At most `maxKeys` devices (the least recently seen goes).
 */
import { Aligner, type AlignedVector, type AlignResult } from './align.js';
import { createVectorDetector } from './detectors/index.js';
import type { VectorAnomaly, VectorDetector } from './detectors/multivariate.js';
import { fieldReader } from './field.js';
import type { AnalyticsRule, DetectorRef, GroupSpec } from './schema.js';

export interface VectorHit {
  device: string;
  anomaly: VectorAnomaly;
  /** The vector judged, and each variable's share of its deviation, by variable name. */
  values: Record<string, number>;
  contributions: Record<string, number>;
  seq: number;
  ts: number;
}

/** Topics whose device and variable names are kept (cleared beyond: a bound, not an LRU). */
const PLACES = 10_000;

interface Device {
  aligner: Aligner;
  detector?: VectorDetector;
}

/** What the rule could not use: a reading without a number, a variable not in the vector, a vector with a silent variable. */
export type SkipReason = 'not_numeric' | 'unknown_variable' | 'stale';

export class VectorRule {
  readonly devices = new Map<string, Device>();
  private readonly group: GroupSpec;
  private readonly levels: number;
  private readonly readers: { suffix: string; read: (p: unknown) => number | undefined }[];
  private readonly spec: DetectorRef;
  private readonly aligned: AlignedVector[] = [];
  private readonly places = new Map<string, { device: string; names: string[] }>();

  constructor(
    private readonly rule: AnalyticsRule,
    private readonly onError: (device: string, err: unknown) => void,
    private readonly onSkip: (reason: SkipReason) => void,
  ) {
    this.group = rule.group!;
    this.spec = (Array.isArray(rule.detector) ? rule.detector[0] : rule.detector) as DetectorRef;
    const levels = rule.match.split('/');
    const hash = levels.indexOf('#');
    this.levels = this.group.deviceLevels ?? (hash >= 0 ? hash : Math.max(0, levels.length - 1));
    this.readers = this.group.fields
      ? this.group.fields.map((f) => ({ suffix: f, read: fieldReader(f) }))
      : [{ suffix: '', read: fieldReader(rule.field) }];
  }

  /** Takes one reading; pushes the anomalies of the vectors it completes. False when it had no number. */
  observe(topic: string, payload: unknown, seq: number, ts: number, hits: VectorHit[]): boolean {
    const where = this.place(topic);
    let numeric = false;
    for (let i = 0; i < this.readers.length; i++) {
      const x = this.readers[i].read(payload);
      if (x === undefined) continue;
      numeric = true;
      const d = this.device(where.device);
      this.count(d.aligner.add(where.names[i], x, ts, seq, this.aligned));
      this.judge(where.device, d, hits);
    }
    if (!numeric) this.onSkip('not_numeric');
    return numeric;
  }

  /** A topic's device and its variables' names (one per reader), cached: topics repeat. */
  private place(topic: string): { device: string; names: string[] } {
    let p = this.places.get(topic);
    if (!p) {
      const levels = topic.split('/');
      const rest = levels.slice(this.levels).join('/');
      p = {
        device: levels.slice(0, this.levels).join('/'),
        names: this.readers.map((r) => [rest, r.suffix].filter((s) => s !== '').join('.') || 'value'),
      };
      if (this.places.size >= PLACES) this.places.clear();
      this.places.set(topic, p);
    }
    return p;
  }

  /** The clock: closes vectors of devices that went quiet. */
  tick(now: number, hits: VectorHit[]): void {
    for (const [name, d] of this.devices) {
      this.count(d.aligner.tick(now, this.aligned));
      this.judge(name, d, hits);
    }
  }

  snapshot(): { device: string; names: string[]; detector: unknown }[] {
    const out: { device: string; names: string[]; detector: unknown }[] = [];
    for (const [device, d] of this.devices) {
      if (d.detector && d.aligner.names) out.push({ device, names: d.aligner.names, detector: d.detector.snapshot() });
    }
    return out;
  }

  /** Restores devices; a detector whose variables differ from the configured ones is dropped. */
  restore(saved: unknown): number {
    if (!Array.isArray(saved)) return 0;
    let n = 0;
    for (const s of saved.slice(-this.rule.maxKeys)) {
      if (typeof s?.device !== 'string' || !Array.isArray(s.names)) continue;
      const d = this.device(s.device);
      const names = this.group.variables ?? s.names;
      if (JSON.stringify(names) !== JSON.stringify(s.names)) continue;
      try {
        const det = createVectorDetector(this.spec, names.length);
        det.restore(s.detector);
        d.aligner = new Aligner(this.group.align, this.maxAge(), names);
        d.detector = det;
        n++;
      } catch {
        // A damaged or foreign snapshot: that device warms up again.
      }
    }
    return n;
  }

  private maxAge(): number {
    return this.group.maxAge ?? 10 * this.group.align;
  }

  private device(name: string): Device {
    let d = this.devices.get(name);
    if (d) {
      // Most recently seen last: the first in the map is the one to forget.
      this.devices.delete(name);
      this.devices.set(name, d);
      return d;
    }
    if (this.devices.size >= this.rule.maxKeys) this.devices.delete(this.devices.keys().next().value!);
    d = { aligner: new Aligner(this.group.align, this.maxAge(), this.group.variables) };
    this.devices.set(name, d);
    return d;
  }

  private count(r: AlignResult): void {
    if (r !== 'ok') this.onSkip(r === 'unknown' ? 'unknown_variable' : 'stale');
  }

  private judge(device: string, d: Device, hits: VectorHit[]): void {
    for (const v of this.aligned) {
      const names = d.aligner.names!;
      try {
        d.detector ??= createVectorDetector(this.spec, names.length);
        const a = d.detector.processVector(v.values, v.ts);
        if (a) hits.push(describe(device, names, v, a));
      } catch (err) {
        d.detector = undefined;
        this.onError(device, err);
      }
    }
    this.aligned.length = 0;
  }
}

/** The event's view of an anomaly: values and contributions by name, the top movers in the reason. */
function describe(device: string, names: string[], v: AlignedVector, a: VectorAnomaly): VectorHit {
  const values: Record<string, number> = {};
  const contributions: Record<string, number> = {};
  names.forEach((n, i) => {
    values[n] = v.values[i];
    contributions[n] = a.contributions[i];
  });
  const top = names
    .map((n) => [n, contributions[n]] as const)
    .sort((x, y) => y[1] - x[1])
    .slice(0, 3)
    .filter(([, c]) => c >= 0.05)
    .map(([n, c]) => `${n} ${Math.round(c * 100)} %`)
    .join(', ');
  const reason = `${device}: ${a.reason}${top ? `; moved most: ${top}` : ''}`;
  return { device, anomaly: { ...a, reason }, values, contributions, seq: v.seq, ts: v.ts };
}
