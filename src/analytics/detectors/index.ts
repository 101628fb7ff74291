/** Builds a detector from its config (a name, or `{type, ...options}`), filling in the defaults. */
import { type DetectorRef, type DetectorSpec, detectorSpecSchema } from '../schema.js';
import { AutoDetector } from './auto.js';
import { ChangePointDetector } from './change-point.js';
import { CombinedDetector } from './combined.js';
import type { Detector } from './detector.js';
import { EwmaDetector } from './ewma.js';
import { FlatlineDetector } from './flatline.js';
import { GapDetector } from './gap.js';
import { MultivariateDetector, type VectorDetector } from './multivariate.js';
import { RateOfChangeDetector } from './rate-of-change.js';
import { SpikeAndDipDetector } from './spike-and-dip.js';
import { ThresholdDetector } from './threshold.js';
import { RobustZScoreDetector } from './zscore.js';

export type { Anomaly, Detector } from './detector.js';

/** The full spec of a detector reference, defaults applied; throws a one-sentence error for a bad one. */
export function detectorSpec(ref: DetectorRef | string): DetectorSpec {
  const r = detectorSpecSchema.safeParse(typeof ref === 'string' ? { type: ref } : ref);
  if (!r.success) {
    const issue = r.error.issues[0];
    const what = typeof ref === 'string' ? `"${ref}"` : JSON.stringify(ref);
    throw new Error(`detector ${what}: ${issue.path.length ? `${issue.path.join('.')}: ` : ''}${issue.message}`);
  }
  return r.data;
}

export function createDetector(ref: DetectorRef | string): Detector {
  const spec = detectorSpec(ref);
  switch (spec.type) {
    case 'auto':
      if (spec.changePoint) {
        return new CombinedDetector([new AutoDetector(spec), createDetector('change-point')]);
      }
      return new AutoDetector(spec);
    case 'multivariate':
      throw new Error('the multivariate detector judges a vector of readings: use it in a rule with group');
    case 'threshold':
      return new ThresholdDetector(spec);
    case 'rate-of-change':
      return new RateOfChangeDetector(spec);
    case 'flatline':
      return new FlatlineDetector(spec);
    case 'gap':
      return new GapDetector(spec);
    case 'zscore':
      return new RobustZScoreDetector(spec);
    case 'ewma':
      return new EwmaDetector(spec);
    case 'spike-and-dip':
      return new SpikeAndDipDetector(spec);
    case 'change-point':
      return new ChangePointDetector(spec);
  }
}

/** A detector over vectors of `size` variables (a rule with `group`, `sluice detect` on several columns). */
export function createVectorDetector(ref: DetectorRef | string, size: number): VectorDetector {
  const spec = detectorSpec(ref);
  if (spec.type !== 'multivariate') throw new Error(`detector ${spec.type} judges one series, not a vector of ${size}`);
  return new MultivariateDetector(size, spec);
}
