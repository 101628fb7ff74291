/**
 * The latest numeric reading per topic, for the dashboard's live chart. The gateway feeds it every
 * appended batch (`observe`); the dashboard asks for `recentReadings()` once a second and the page
 * keeps the history itself, so the server holds one small entry per topic and nothing grows:
 * at most `maxTopics` topics (the least recently updated is forgotten first).
 */
import { fieldReader } from '../../analytics/field.js';

export interface Reading {
  topic: string;
  /** Epoch ms when the gateway accepted the reading. */
  ts: number;
  value: number;
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

export class LatestReadings {
  // A Map keeps insertion order: deleting and re-inserting on update makes the first key the stalest.
  private readonly latest = new Map<string, Reading>();

  constructor(private readonly maxTopics = 200) {}

  /**
   * Only the last reading of each topic in a batch is looked at: a payload is parsed only when
   * something reads it (MQTT bodies are stored unparsed), and the chart shows one value per topic.
   */
  observe(events: Iterable<ReadingLike>, now = Date.now()): void {
    const last = new Map<string, ReadingLike>();
    for (const e of events) if (e.kind === undefined || e.kind === 'reading') last.set(e.topic, e);
    for (const e of last.values()) {
      const value = numericValue(e.payload);
      if (value === undefined) continue;
      this.latest.delete(e.topic);
      this.latest.set(e.topic, { topic: e.topic, ts: e.ts ?? now, value });
      if (this.latest.size > this.maxTopics) {
        const stalest = this.latest.keys().next().value;
        if (stalest !== undefined) this.latest.delete(stalest);
      }
    }
  }

  /** The latest reading of each topic, most recently updated first. */
  recentReadings(): Reading[] {
    return [...this.latest.values()].reverse();
  }
}
