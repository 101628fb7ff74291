/**
 * P² quantile estimator (Jain & Chlamtac 1985): one quantile of a stream in five markers, O(1)
 * memory and time per value, no sample kept. Exact for the first five values.
 */
export class P2Quantile {
  private readonly q = new Float64Array(5);
  private readonly n = new Float64Array(5);
  private readonly np = new Float64Array(5);
  private readonly dn: Float64Array;
  private count = 0;

  constructor(readonly p: number) {
    this.dn = Float64Array.of(0, p / 2, p, (1 + p) / 2, 1);
  }

  add(x: number): void {
    const q = this.q;
    if (this.count < 5) {
      // Insertion into the first five, kept sorted.
      let i = this.count++;
      while (i > 0 && q[i - 1] > x) {
        q[i] = q[i - 1];
        i--;
      }
      q[i] = x;
      if (this.count === 5) {
        for (let j = 0; j < 5; j++) this.n[j] = j;
        const p = this.p;
        this.np.set([0, 2 * p, 4 * p, 2 + 2 * p, 4]);
      }
      return;
    }
    this.count++;
    let k: number;
    if (x < q[0]) {
      q[0] = x;
      k = 0;
    } else if (x >= q[4]) {
      q[4] = Math.max(q[4], x);
      k = 3;
    } else {
      k = 0;
      while (k < 3 && x >= q[k + 1]) k++;
    }
    for (let i = k + 1; i < 5; i++) this.n[i]++;
    for (let i = 0; i < 5; i++) this.np[i] += this.dn[i];
    for (let i = 1; i < 4; i++) {
      const d = this.np[i] - this.n[i];
      if ((d >= 1 && this.n[i + 1] - this.n[i] > 1) || (d <= -1 && this.n[i - 1] - this.n[i] < -1)) {
        const s = Math.sign(d);
        const qp = this.parabolic(i, s);
        q[i] = q[i - 1] < qp && qp < q[i + 1] ? qp : this.linear(i, s);
        this.n[i] += s;
      }
    }
  }

  value(): number {
    const c = this.count;
    if (c === 0) return Number.NaN;
    if (c <= 5) {
      // Exact: linear interpolation between closest ranks, as numpy's default does.
      const h = (c - 1) * this.p;
      const lo = Math.floor(h);
      const hi = Math.min(c - 1, lo + 1);
      return this.q[lo] + (h - lo) * (this.q[hi] - this.q[lo]);
    }
    return this.q[2];
  }

  private parabolic(i: number, d: number): number {
    const { q, n } = this;
    return (
      q[i] +
      (d / (n[i + 1] - n[i - 1])) *
        ((n[i] - n[i - 1] + d) * ((q[i + 1] - q[i]) / (n[i + 1] - n[i])) +
          (n[i + 1] - n[i] - d) * ((q[i] - q[i - 1]) / (n[i] - n[i - 1])))
    );
  }

  private linear(i: number, d: number): number {
    const { q, n } = this;
    return q[i] + (d * (q[i + d] - q[i])) / (n[i + d] - n[i]);
  }
}
