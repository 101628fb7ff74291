/**
 * The last N values of a stream kept both in arrival order (a ring) and sorted, so the median and
 * the MAD are available in O(N) memory moves per reading instead of a sort. N is fixed at
 * construction: memory is bounded whatever the stream does.
 */
export class SortedWindow {
  readonly capacity: number;
  private readonly ring: Float64Array;
  private readonly sorted: Float64Array;
  private head = 0;
  private n = 0;

  constructor(capacity: number) {
    this.capacity = Math.max(1, capacity | 0);
    this.ring = new Float64Array(this.capacity);
    this.sorted = new Float64Array(this.capacity);
  }

  get size(): number {
    return this.n;
  }

  /** Adds a value, dropping the oldest when full. */
  push(x: number): void {
    if (this.n === this.capacity) {
      const old = this.ring[this.head];
      this.removeSorted(old);
    } else {
      this.n++;
    }
    this.ring[this.head] = x;
    this.head = (this.head + 1) % this.capacity;
    this.insertSorted(x);
  }

  clear(): void {
    this.n = 0;
    this.head = 0;
  }

  /** The k-th smallest (0-based) of the values held. */
  at(k: number): number {
    return this.sorted[k];
  }

  min(): number {
    return this.sorted[0];
  }

  max(): number {
    return this.sorted[this.n - 1];
  }

  median(): number {
    const n = this.n;
    if (n === 0) return Number.NaN;
    const h = n >> 1;
    return n % 2 ? this.sorted[h] : (this.sorted[h - 1] + this.sorted[h]) / 2;
  }

  /**
   * Median absolute deviation from `m`: walks outwards from m in the sorted array, merging the two
   * sides by distance, so it takes O(N) and no allocation.
   */
  mad(m = this.median()): number {
    const n = this.n;
    if (n === 0) return Number.NaN;
    const s = this.sorted;
    // First index with s[i] >= m.
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (s[mid] < m) lo = mid + 1;
      else hi = mid;
    }
    let left = lo - 1;
    let right = lo;
    const k1 = n % 2 ? n >> 1 : (n >> 1) - 1;
    const k2 = n >> 1;
    let d1 = 0;
    let d2 = 0;
    for (let k = 0; k <= k2; k++) {
      const dl = left >= 0 ? m - s[left] : Infinity;
      const dr = right < n ? s[right] - m : Infinity;
      let d: number;
      if (dl <= dr) {
        d = dl;
        left--;
      } else {
        d = dr;
        right++;
      }
      if (k === k1) d1 = d;
      if (k === k2) d2 = d;
    }
    return (d1 + d2) / 2;
  }

  /** The values in arrival order, oldest first (snapshots). */
  values(): number[] {
    const out: number[] = [];
    const start = (this.head - this.n + this.capacity) % this.capacity;
    for (let i = 0; i < this.n; i++) out.push(this.ring[(start + i) % this.capacity]);
    return out;
  }

  private insertSorted(x: number): void {
    const s = this.sorted;
    let lo = 0;
    let hi = this.n - 1; // the new value is already counted in n
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (s[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    s.copyWithin(lo + 1, lo, this.n - 1);
    s[lo] = x;
  }

  private removeSorted(x: number): void {
    const s = this.sorted;
    let lo = 0;
    let hi = this.n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (s[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    // s[lo] === x (or NaN-free equal value): close the gap.
    s.copyWithin(lo, lo + 1, this.n);
  }
}
