/** Edge analytics: windows, detectors and local actions over the reading stream (see engine.ts). */

export type { Anomaly, Detector } from './detectors/detector.js';
export { createDetector, detectorSpec } from './detectors/index.js';
export { type AnalyticsContext, AnalyticsEngine, type AnalyticsStatus, type ObservedEvent } from './engine.js';
export { type AnalyticsConfig, type AnalyticsRule, analyticsSchema } from './schema.js';
