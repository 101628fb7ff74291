/**
 * Aligns one device's readings, which arrive one variable at a time and at slightly different
 * moments, into vectors. A vector opens with the first reading after the last one closed and closes
 * when every variable has reported in it, when a variable reports twice (it runs faster than the
 * others), or when `align` has passed (by the readings' time, or the clock's tick). A variable that
 * did not report in a vector keeps its last value (sample and hold) while that is younger than
 * `maxAge`; a vector with a variable older than that, or never seen, is not judged (counted).
 *
 * The variables are fixed: configured, or those seen in the device's first `align` period (sorted,
 * so that a restart finds the same order). A variable first seen later is refused (counted).
 */

export type AlignResult = 'ok' | 'unknown' | 'stale';

export interface AlignedVector {
  values: Float64Array;
  /** Time of the reading that closed the vector, and its sequence number. */
  ts: number;
  seq: number;
}

export class Aligner {
  names: string[] | undefined;
  private index = new Map<string, number>();
  private values = new Float64Array(0);
  private seenAt = new Float64Array(0);
  private fresh = new Uint8Array(0);
  private freshCount = 0;
  /** Time the open vector started (NaN: none open). */
  private openedAt = Number.NaN;
  private lastTs = 0;
  private lastSeq = 0;
  /** Discovery (no configured variables): what the first align period showed. */
  private discovered = new Map<string, { value: number; ts: number }>();
  private discoveryStart = Number.NaN;

  constructor(
    private readonly align: number,
    private readonly maxAge: number,
    variables?: string[],
    private readonly maxVariables = 256,
  ) {
    if (variables) this.fix(variables);
  }

  /** Adds one reading; pushes to `out` the vectors it closes. */
  add(name: string, value: number, ts: number, seq: number, out: AlignedVector[]): AlignResult {
    if (!this.names) {
      if (Number.isNaN(this.discoveryStart)) this.discoveryStart = ts;
      if (ts - this.discoveryStart <= this.align) {
        if (this.discovered.size < this.maxVariables || this.discovered.has(name)) this.discovered.set(name, { value, ts });
        return 'ok';
      }
      this.fix([...this.discovered.keys()].sort());
      for (const [n, v] of this.discovered) this.put(this.index.get(n)!, v.value, v.ts);
      this.discovered.clear();
    }
    const i = this.index.get(name);
    if (i === undefined) return 'unknown';
    if (!Number.isNaN(this.openedAt) && (ts - this.openedAt > this.align || this.fresh[i])) this.close(out);
    if (Number.isNaN(this.openedAt)) this.openedAt = ts;
    this.put(i, value, ts);
    this.lastTs = ts;
    this.lastSeq = seq;
    if (!this.fresh[i]) {
      this.fresh[i] = 1;
      this.freshCount++;
    }
    if (this.freshCount === this.names!.length) return this.close(out);
    return 'ok';
  }

  /** Closes a vector left open for longer than `align` by `now` (the clock: the device went quiet). */
  tick(now: number, out: AlignedVector[]): AlignResult {
    if (!Number.isNaN(this.openedAt) && now - this.openedAt > this.align) return this.close(out);
    return 'ok';
  }

  private fix(names: string[]): void {
    this.names = names.slice(0, this.maxVariables);
    this.index = new Map(this.names.map((n, i) => [n, i]));
    const p = this.names.length;
    this.values = new Float64Array(p);
    this.seenAt = new Float64Array(p).fill(Number.NaN);
    this.fresh = new Uint8Array(p);
  }

  private put(i: number, value: number, ts: number): void {
    this.values[i] = value;
    this.seenAt[i] = ts;
  }

  private close(out: AlignedVector[]): AlignResult {
    const end = this.lastTs;
    this.openedAt = Number.NaN;
    this.fresh.fill(0);
    this.freshCount = 0;
    for (let i = 0; i < this.seenAt.length; i++) {
      // Never seen, or held for too long: the vector would be made up.
      if (!(end - this.seenAt[i] <= this.maxAge)) return 'stale';
    }
    out.push({ values: Float64Array.from(this.values), ts: end, seq: this.lastSeq });
    return 'ok';
  }
}
