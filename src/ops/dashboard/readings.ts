/**
 * What the dashboard taps from ingest: the latest numeric reading per topic (for the live charts),
 * the unit a topic's payloads name (`{value, unit}`, as the Modbus and serial drivers send), and
 * per-topic event rates (the broker view). The gateway feeds it every appended batch (`observe`);
 * the dashboard asks once a second. Nothing grows: at most `maxTopics` topics are remembered (the
 * least recently updated is forgotten first), and rates are counted for at most `maxRateTopics`
 * topics between two looks (later topics in the same second are counted as "other").
 *
 * Topics are user data: every per-topic table is a Map, never a plain object, so a topic named
 * `constructor` or `__proto__` is a topic like any other.
 */
import { fieldReader } from '../../analytics/field.js';

export interface Reading {
  topic: string;
  /** Epoch ms when the gateway accepted the reading. */
  ts: number;
  value: number;
  unit?: string;
}

export interface TopicRate {
  topic: string;
  /** Events per second over the last look (smoothed). */
  rate: number;
  /** Events seen since the gateway started (while remembered). */
  total: number;
}

/** The few fields of an event this needs (an ObservedEvent or a driver reading fits). */
export interface ReadingLike {
  topic: string;
  /** When the gateway accepted it; `observe`'s `now` where absent (an EventInput before the log stamps it). */
  ts?: number;
  payload: unknown;
  kind?: string;
}

/**
 * A number from a payload: the payload itself, its `value`, or a numeric string; the number an
 * analytics rule without a `field` reads.
 */
export const numericValue = fieldReader(undefined);

/** The `unit` a payload names (`{value: 21.5, unit: "°C"}`), short strings only. */
export function unitOf(payload: unknown): string | undefined {
  if (payload === null || typeof payload !== 'object') return undefined;
  const u = (payload as { unit?: unknown }).unit;
  return typeof u === 'string' && u.length > 0 && u.length <= 16 ? u : undefined;
}

const OTHER = '(other topics)';

export class LatestReadings {
  // A Map keeps insertion order: deleting and re-inserting on update makes the first key the stalest.
  private readonly latest = new Map<string, Reading>();
  private readonly units = new Map<string, string>();
  private counts = new Map<string, number>();
  private readonly rates = new Map<string, TopicRate>();
  private lastLook = 0;

  constructor(
    private readonly maxTopics = 200,
    private readonly maxRateTopics = 500,
  ) {}

  /**
   * Every event is counted for the rates; only the last reading of each topic in a batch is parsed
   * (MQTT bodies are stored unparsed, and the chart shows one value per topic).
   */
  observe(events: Iterable<ReadingLike>, now = Date.now()): void {
    const last = new Map<string, ReadingLike>();
    const counts = this.counts;
    for (const e of events) {
      const n = counts.get(e.topic);
      if (n !== undefined) counts.set(e.topic, n + 1);
      else if (counts.size < this.maxRateTopics) counts.set(e.topic, 1);
      else counts.set(OTHER, (counts.get(OTHER) ?? 0) + 1);
      if (e.kind === undefined || e.kind === 'reading') last.set(e.topic, e);
    }
    for (const e of last.values()) {
      const value = numericValue(e.payload);
      if (value === undefined) continue;
      const unit = unitOf(e.payload);
      if (unit !== undefined) this.units.set(e.topic, unit);
      this.latest.delete(e.topic);
      this.latest.set(e.topic, { topic: e.topic, ts: e.ts ?? now, value, ...(unit ? { unit } : {}) });
      if (this.latest.size > this.maxTopics) {
        const stalest = this.latest.keys().next().value;
        if (stalest !== undefined) {
          this.latest.delete(stalest);
          this.units.delete(stalest);
        }
      }
    }
  }

  /** The latest reading of each topic, most recently updated first. */
  recentReadings(): Reading[] {
    return [...this.latest.values()].reverse();
  }

  /** The unit the latest payloads of a topic named, if any. */
  unit(topic: string): string | undefined {
    return this.units.get(topic);
  }

  /**
   * The `n` busiest topics by rate since the previous call (smoothed over a few calls), and how
   * many topics were counted. Called once per dashboard tick.
   */
  topicRates(n: number, now = Date.now()): { topics: TopicRate[]; counted: number } {
    const dt = (now - this.lastLook) / 1000;
    const counts = this.counts;
    this.counts = new Map();
    this.lastLook = now;
    // A first look, or one after a long pause (no viewer), has no meaningful interval.
    const valid = dt > 0 && dt < 60;
    for (const [topic, c] of counts) {
      const r = this.rates.get(topic) ?? { topic, rate: 0, total: 0 };
      r.total += c;
      if (valid) r.rate = r.rate === 0 ? c / dt : 0.5 * r.rate + 0.5 * (c / dt);
      this.rates.set(topic, r);
    }
    for (const [topic, r] of this.rates) {
      if (counts.has(topic)) continue;
      r.rate = valid ? 0.5 * r.rate : 0;
      if (r.rate < 0.01) this.rates.delete(topic);
    }
    const sorted = [...this.rates.values()].sort((a, b) => b.rate - a.rate);
    for (const r of sorted.slice(this.maxRateTopics)) this.rates.delete(r.topic);
    const top = sorted.slice(0, n);
    return { topics: top.map((r) => ({ ...r, rate: Math.round(r.rate * 100) / 100 })), counted: this.rates.size };
  }
}
