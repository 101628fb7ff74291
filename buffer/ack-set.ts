/**
 * The acknowledged part of one lane of a reader: every seq <= `floor`, plus a few disjoint ranges
 * above it. Ranges exist because a live-first reader acknowledges new events before the older
 * backlog; they merge into the floor as the backlog drains. Bounded: past MAX_RANGES the smallest
 * range is forgotten, which only means its events are delivered again (at least once holds).
 */
export const MAX_RANGES = 32;

export class AckSet {
  floor: number;
  ranges: Array<[number, number]>;

  constructor(floor = 0, ranges: Array<[number, number]> = []) {
    this.floor = floor;
    this.ranges = [];
    for (const [lo, hi] of ranges) this.add(lo, hi);
  }

  /** Marks [lo, hi] acknowledged. */
  add(lo: number, hi: number): void {
    if (hi <= this.floor || hi < lo) return;
    if (lo <= this.floor + 1) {
      this.floor = hi;
    } else {
      // insert keeping order, merging overlapping or adjacent ranges
      const out: Array<[number, number]> = [];
      let nlo = lo;
      let nhi = hi;
      let placed = false;
      for (const r of this.ranges) {
        if (r[1] + 1 < nlo) out.push(r);
        else if (nhi + 1 < r[0]) {
          if (!placed) {
            out.push([nlo, nhi]);
            placed = true;
          }
          out.push(r);
        } else {
          nlo = Math.min(nlo, r[0]);
          nhi = Math.max(nhi, r[1]);
        }
      }
      if (!placed) out.push([nlo, nhi]);
      out.sort((a, b) => a[0] - b[0]);
      this.ranges = out;
    }
    this.normalise();
  }

  /** Everything up to `seq` acknowledged (events evicted, or a plain commit without a batch). */
  raiseFloor(seq: number): void {
    if (seq > this.floor) this.floor = seq;
    this.normalise();
  }

  private normalise(): void {
    while (this.ranges.length > 0 && this.ranges[0][0] <= this.floor + 1) {
      const r = this.ranges.shift()!;
      if (r[1] > this.floor) this.floor = r[1];
    }
    while (this.ranges.length > MAX_RANGES) {
      let smallest = 0;
      for (let i = 1; i < this.ranges.length; i++) {
        if (this.ranges[i][1] - this.ranges[i][0] < this.ranges[smallest][1] - this.ranges[smallest][0]) smallest = i;
      }
      this.ranges.splice(smallest, 1);
    }
  }

  has(seq: number): boolean {
    if (seq <= this.floor) return true;
    for (const r of this.ranges) {
      if (seq < r[0]) return false;
      if (seq <= r[1]) return true;
    }
    return false;
  }

  /** The position to read after: `p`, or the end of the acknowledged range that follows it. */
  skip(p: number): number {
    let q = Math.max(p, this.floor);
    for (const r of this.ranges) {
      if (r[0] > q + 1) break;
      if (r[1] > q) q = r[1];
    }
    return q;
  }

  /** How many seqs in [lo, hi] are acknowledged. */
  countIn(lo: number, hi: number): number {
    if (hi < lo) return 0;
    let n = Math.max(0, Math.min(hi, this.floor) - lo + 1);
    for (const r of this.ranges) {
      const a = Math.max(lo, r[0]);
      const b = Math.min(hi, r[1]);
      if (b >= a) n += b - a + 1;
    }
    return n;
  }

  toJSON(): { floor: number; ranges: Array<[number, number]> } {
    return { floor: this.floor, ranges: this.ranges };
  }
}
