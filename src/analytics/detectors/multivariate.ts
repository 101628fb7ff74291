/**
 * `multivariate`: judges a device's vector of readings as a whole (Hotelling's T², the Mahalanobis
 * distance to its learned normal), so that a fault visible only in how sensors move together (a
 * correlation broken, a ratio off) is found although every sensor stays inside its own range.
 *
 * - Model: mean and covariance, equal weights during `warmup`, then exponentially forgotten with a
 *   `halfLife` in readings (slow: the normal drifts, a fault is not learned away). The correlation
 *   is shrunk towards the identity by p / (n + p) (a prior worth p readings: well conditioned with
 *   few readings per variable) and inverted every max(16, p) readings, amortising its O(p³).
 * - Calibration: T²'s scale depends on the estimate's error, autocorrelation and tails, so the
 *   detector does not trust χ²_p limits. It standardises the cube root of T² (Wilson–Hilferty: for
 *   any scale, near normal) by its own running mean and spread, learned prequentially (each T²
 *   against the model before the reading) from the second half of the warm-up on.
 * - Two tests on that standard score u: an instant one (u beyond the `confidence` quantile) for a
 *   sudden break, and a one-sided CUSUM (Page) on u for a sustained, smaller shift; its limit gives
 *   the same in-control run length, 1 / (1 − confidence) readings (Siegmund's approximation).
 * - While alarming, the model learns at 1/20 of its rate: a sustained fault is reported for as
 *   long as it lasts (many half-lives), yet a new operating point is eventually accepted.
 * - Contributions: each variable's reconstruction-based contribution (Alcala & Qin 2009),
 *   (Σ⁻¹z)ᵢ² / (Σ⁻¹)ᵢᵢ: how much T² falls when that variable alone is replaced by its best estimate
 *   from the others; reported as shares summing to 1.
 * Memory: about 3 p² + 8 p numbers; cost per reading O(p²).
 */
import { normalQuantile } from '../stats/normal.js';
import { invertSpd } from '../stats/linalg.js';
import { type Anomaly, excessScore } from './detector.js';

export interface MultivariateOptions {
  /** Readings learned before judging; default max(60, 2p). */
  warmup?: number;
  /** Readings after which a reading's weight in the model has halved. */
  halfLife: number;
  /** In-control confidence of each test, %: about one false alarm per 1 / (1 − confidence) readings of i.i.d. data. */
  confidence: number;
  /** Score from which a vector is reported (0.5 = at a test's limit). */
  threshold: number;
  /** Readings of silence after an anomaly: one incident, one event. */
  rest: number;
  /** The CUSUM test for sustained shifts beside the instant one. */
  changePoint: boolean;
}

export const MULTIVARIATE_DEFAULTS: MultivariateOptions = { halfLife: 2000, confidence: 99.9, threshold: 0.5, rest: 30, changePoint: true };

/** The learning rate while alarming, as a share of the normal one. */
const ALARM_RATE = 0.05;
/** The calibration of T² learns this many times faster than the model. */
const CALIBRATION_PACE = 10;
/** CUSUM allowance on the standard score: tuned to shifts of one standard deviation. */
const K = 0.5;
/** The EWMA weight matching the CUSUM's time scale (about h / K readings: 2 / (12 + 1)). */
const SMOOTH = 0.15;

export interface VectorAnomaly extends Anomaly {
  /** Each variable's share of the deviation (sums to 1), in the order of the vector. */
  contributions: number[];
}

/** A detector over a fixed-length vector of numbers (one device's variables). */
export interface VectorDetector {
  readonly type: string;
  readonly size: number;
  readonly lastScore: number;
  /** True once past the warm-up: the last vector was judged. */
  readonly judging: boolean;
  /** Each variable's share of the last vector's deviation (zeros while warming up). */
  readonly contributions: Float64Array;
  processVector(x: ArrayLike<number>, ts: number): VectorAnomaly | null;
  snapshot(): unknown;
  restore(state: unknown): void;
}

export class MultivariateDetector implements VectorDetector {
  readonly type = 'multivariate';
  lastScore = 0;
  readonly contributions: Float64Array;
  private readonly o: MultivariateOptions;
  private readonly warmup: number;
  private readonly minRate: number;
  private readonly refreshEvery: number;
  private readonly zLimit: number;
  private readonly hLimit: number;
  // Model (snapshot)
  private n = 0;
  private readonly mean: Float64Array;
  private readonly cov: Float64Array;
  /** Running mean and variance of cbrt(T²) (prequential), and its sample count. */
  private m = 0;
  private v = 0;
  private calibrated = 0;
  /**
   * For the CUSUM: an EWMA of the standard score over the CUSUM's own time scale, and the running
   * mean squares of the score (c0) and of that EWMA (c1): their ratio says how much faster than
   * independent scores correlated ones add up.
   */
  private smooth = 0;
  private c1 = 0;
  private c0 = 1;
  private cusum = 0;
  private sinceAlarm = Infinity;
  private alarming = false;
  // Derived, rebuilt on refresh
  private readonly inv: Float64Array;
  private readonly sd: Float64Array;
  private ready = false;
  private sinceRefresh = 0;
  // Scratch
  private readonly corr: Float64Array;
  private readonly chol: Float64Array;
  private readonly z: Float64Array;
  private readonly w: Float64Array;

  constructor(
    readonly size: number,
    options: Partial<MultivariateOptions> = {},
  ) {
    if (!(size >= 1 && Number.isInteger(size))) throw new Error('a multivariate detector needs at least one variable');
    this.o = { ...MULTIVARIATE_DEFAULTS, ...options };
    const p = size;
    this.warmup = Math.max(this.o.warmup ?? Math.max(60, 2 * p), 8);
    this.minRate = Math.LN2 / this.o.halfLife;
    this.refreshEvery = Math.max(16, p);
    const tail = 1 - this.o.confidence / 100;
    this.zLimit = normalQuantile(1 - tail);
    this.hLimit = Math.max(1, Math.log(1 / tail) - 1.166);
    this.mean = new Float64Array(p);
    this.cov = new Float64Array(p * p);
    this.inv = new Float64Array(p * p);
    this.corr = new Float64Array(p * p);
    this.chol = new Float64Array(p * p);
    this.sd = new Float64Array(p);
    this.z = new Float64Array(p);
    this.w = new Float64Array(p);
    this.contributions = new Float64Array(p);
  }

  get judging(): boolean {
    return this.n > this.warmup && this.calibrated >= 8;
  }

  processVector(x: ArrayLike<number>, _ts: number): VectorAnomaly | null {
    const p = this.size;
    if (x.length !== p) throw new Error(`expected ${p} values, got ${x.length}`);
    for (let i = 0; i < p; i++) if (!Number.isFinite(x[i])) throw new Error(`variable ${i} is not a finite number`);
    this.lastScore = 0;
    this.contributions.fill(0);
    let anomaly: VectorAnomaly | null = null;
    let weight = 1;
    if (this.n >= this.warmup >> 1) {
      if (!this.ready || ++this.sinceRefresh >= this.refreshEvery) this.refresh();
      const t2 = this.t2(x);
      const y = Math.cbrt(t2);
      const sd = Math.sqrt(this.v) || 1e-9;
      const u = this.calibrated >= 8 ? (y - this.m) / sd : 0;
      if (this.n >= this.warmup && this.calibrated >= 8) {
        // Correlated scores sum faster than independent ones (a slow process, a cycle): the CUSUM's
        // increments are scaled so that their sums over its time scale have the variance that
        // independent scores' would (variance inflation of the EWMA against the i.i.d. case).
        const inflation = Math.min(100, Math.max(1, this.c1 / (this.c0 * (SMOOTH / (2 - SMOOTH)))));
        if (this.o.changePoint) this.cusum = Math.max(0, this.cusum + u / Math.sqrt(inflation) - K);
        const instant = u > this.zLimit ? excessScore(u - this.zLimit, this.zLimit) : (0.5 * Math.max(0, u)) / this.zLimit;
        const sustained = this.cusum > this.hLimit ? excessScore(this.cusum - this.hLimit, this.hLimit) : (0.5 * this.cusum) / this.hLimit;
        const raw = Math.max(instant, sustained);
        this.alarming = raw >= 0.5;
        if (this.alarming) weight = ALARM_RATE;
        // Huber-like: a reading far out moves the model no more than a typical one would.
        const typical = this.m * this.m * this.m;
        if (t2 > typical) weight *= typical / t2;
        this.sinceAlarm++;
        this.lastScore = raw;
        this.contribute();
        if (raw >= this.o.threshold && this.sinceAlarm > this.o.rest) {
          this.sinceAlarm = 0;
          anomaly = this.describe(raw, t2, u, instant >= sustained);
        }
      }
      // The calibration learns from normal readings only (an alarm would widen its own limits).
      if (!this.alarming) {
        this.calibrated++;
        // Faster than the model: the scale of T² moves as the model firms up (less shrinkage).
        const a = Math.max(1 / this.calibrated, CALIBRATION_PACE * this.minRate);
        const d = y - this.m;
        this.m += a * d;
        this.v = (1 - a) * (this.v + a * d * d);
        if (this.calibrated > 8) {
          this.smooth += SMOOTH * (u - this.smooth);
          this.c1 += a * (this.smooth * this.smooth - this.c1);
          this.c0 += a * (u * u - this.c0);
        }
      }
    }
    this.learn(x, weight);
    return anomaly;
  }

  /** T² of x against the current model; leaves z (standardised x) and w = R⁻¹z for contributions. */
  private t2(x: ArrayLike<number>): number {
    const p = this.size;
    const { z, w, inv } = this;
    for (let i = 0; i < p; i++) z[i] = (x[i] - this.mean[i]) / this.sd[i];
    let t2 = 0;
    for (let i = 0; i < p; i++) {
      let s = 0;
      const row = i * p;
      for (let j = 0; j < p; j++) s += inv[row + j] * z[j];
      w[i] = s;
      t2 += z[i] * s;
    }
    return t2 > 0 ? t2 : 0;
  }

  private contribute(): void {
    const p = this.size;
    let total = 0;
    for (let i = 0; i < p; i++) {
      const c = (this.w[i] * this.w[i]) / this.inv[i * p + i];
      this.contributions[i] = c;
      total += c;
    }
    if (total > 0) for (let i = 0; i < p; i++) this.contributions[i] /= total;
  }

  private learn(x: ArrayLike<number>, weight: number): void {
    const p = this.size;
    this.n++;
    const a = Math.max(1 / this.n, this.minRate) * weight;
    const { mean, cov, z } = this;
    for (let i = 0; i < p; i++) {
      z[i] = x[i] - mean[i];
      mean[i] += a * z[i];
    }
    const keep = 1 - a;
    // The upper triangle only: refresh() reads it for both halves.
    for (let i = 0; i < p; i++) {
      const row = i * p;
      const ai = a * z[i];
      for (let j = i; j < p; j++) cov[row + j] = keep * (cov[row + j] + ai * z[j]);
    }
  }

  /** Rebuilds the standard deviations and the inverse of the shrunk correlation matrix. */
  private refresh(): void {
    const p = this.size;
    this.sinceRefresh = 0;
    const nEff = Math.min(this.n, 1 / this.minRate);
    const shrink = p / (nEff + p);
    for (let i = 0; i < p; i++) {
      const v = this.cov[i * p + i];
      // A variable that never moved still gets a scale: a change of a millionth of its level is news.
      this.sd[i] = Math.sqrt(Math.max(v, (1e-6 * Math.abs(this.mean[i])) ** 2, 1e-24));
    }
    for (let i = 0; i < p; i++) {
      this.corr[i * p + i] = 1;
      for (let j = i + 1; j < p; j++) {
        const r = ((1 - shrink) * this.cov[i * p + j]) / (this.sd[i] * this.sd[j]);
        this.corr[i * p + j] = r;
        this.corr[j * p + i] = r;
      }
    }
    if (!invertSpd(this.corr, p, this.inv, this.chol)) {
      // Numerically singular despite the shrinkage (rounding): fall back to independent variables.
      this.inv.fill(0);
      for (let i = 0; i < p; i++) this.inv[i * p + i] = 1;
    }
    this.ready = true;
  }

  private describe(score: number, t2: number, u: number, instant: boolean): VectorAnomaly {
    return {
      score,
      reason: instant
        ? `the readings together are unlike their normal (T² ${t2.toFixed(1)}, ${u.toFixed(1)}σ beyond the usual)`
        : `the readings together have drifted from their normal (sustained shift, CUSUM ${this.cusum.toFixed(1)} > ${this.hLimit.toFixed(1)})`,
      window: { readings: this.n, t2: round(t2), u: round(u), cusum: round(this.cusum) },
      contributions: Array.from(this.contributions, round),
    };
  }

  snapshot(): unknown {
    return {
      type: this.type,
      size: this.size,
      state: {
        n: this.n,
        mean: Array.from(this.mean),
        cov: Array.from(this.cov),
        m: this.m,
        v: this.v,
        calibrated: this.calibrated,
        c1: this.c1,
        c0: this.c0,
        smooth: this.smooth,
        cusum: this.cusum,
        sinceAlarm: Number.isFinite(this.sinceAlarm) ? this.sinceAlarm : -1,
        alarming: this.alarming,
      },
    };
  }

  restore(snap: unknown): void {
    const s = snap as { type?: unknown; size?: unknown; state?: Record<string, unknown> } | null;
    const st = s?.state;
    const p = this.size;
    const nums = ['n', 'm', 'v', 'calibrated', 'c1', 'c0', 'smooth', 'cusum', 'sinceAlarm'];
    if (
      !s ||
      s.type !== this.type ||
      s.size !== p ||
      !st ||
      !nums.every((k) => typeof st[k] === 'number' && Number.isFinite(st[k])) ||
      !isNumbers(st.mean, p) ||
      !isNumbers(st.cov, p * p)
    ) {
      throw new Error(`snapshot is not a ${p}-variable multivariate detector's state`);
    }
    this.n = st.n as number;
    this.mean.set(st.mean as number[]);
    this.cov.set(st.cov as number[]);
    this.m = st.m as number;
    this.v = st.v as number;
    this.calibrated = st.calibrated as number;
    this.c1 = st.c1 as number;
    this.c0 = st.c0 as number;
    this.smooth = st.smooth as number;
    this.cusum = st.cusum as number;
    this.sinceAlarm = (st.sinceAlarm as number) < 0 ? Infinity : (st.sinceAlarm as number);
    this.alarming = st.alarming === true;
    this.ready = false;
  }
}

function isNumbers(a: unknown, n: number): a is number[] {
  return Array.isArray(a) && a.length === n && a.every((x) => typeof x === 'number' && Number.isFinite(x));
}

function round(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}
