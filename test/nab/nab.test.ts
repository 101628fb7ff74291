import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/peers.js';
import { createDetector } from '../../src/analytics/detectors/index.js';
import { NAB_DIR, NAB_SCORER, replayCorpus, scoreCorpus } from './nab.js';

// A floor on part of NAB (the full corpus is `npm run nab`): the default detector, streaming, on
// the labelled artificial series and the real series with known causes (13 files, 25 windows).
describe.skipIf(!existsSync(NAB_DIR) || !existsSync(NAB_SCORER))('NAB floor', () => {
  it('the auto detector scores at least 60 on artificialWithAnomaly + realKnownCause', async () => {
    const dir = tempDir('sluice-nab-');
    try {
      const only = ['artificialWithAnomaly', 'realKnownCause'];
      const stats = replayCorpus(dir.path, () => createDetector('auto'), only);
      expect(stats.files).toBe(13);
      const { score } = await scoreCorpus(dir.path, only);
      expect(score).toBeGreaterThanOrEqual(60);
    } finally {
      dir.cleanup();
    }
  }, 30_000);
});
