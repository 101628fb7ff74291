/**
 * Dense symmetric positive-definite matrices, row-major in a Float64Array of p × p: the inverse by
 * Cholesky, in place, no allocation beyond the caller's scratch. O(p³); callers amortise it.
 */

/**
 * Inverts the SPD matrix `a` (p × p) into `out`, using `l` (p × p) as scratch for the Cholesky
 * factor. Returns false (and leaves `out` unspecified) when `a` is not positive definite.
 */
export function invertSpd(a: Float64Array, p: number, out: Float64Array, l: Float64Array): boolean {
  // A = L Lᵀ
  for (let i = 0; i < p; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * p + j];
      for (let k = 0; k < j; k++) s -= l[i * p + k] * l[j * p + k];
      if (i === j) {
        if (!(s > 0)) return false;
        l[i * p + i] = Math.sqrt(s);
      } else {
        l[i * p + j] = s / l[j * p + j];
      }
    }
    for (let j = i + 1; j < p; j++) l[i * p + j] = 0;
  }
  // L⁻¹ in place (lower triangular), then A⁻¹ = L⁻ᵀ L⁻¹.
  for (let i = 0; i < p; i++) {
    l[i * p + i] = 1 / l[i * p + i];
    for (let j = 0; j < i; j++) {
      let s = 0;
      for (let k = j; k < i; k++) s -= l[i * p + k] * l[k * p + j];
      l[i * p + j] = s * l[i * p + i];
    }
  }
  for (let i = 0; i < p; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let k = i; k < p; k++) s += l[k * p + i] * l[k * p + j];
      out[i * p + j] = s;
      out[j * p + i] = s;
    }
  }
  return true;
}
