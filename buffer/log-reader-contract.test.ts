/** The LogReader contract suite (test/helpers/log-reader-contract.ts) against the real ring log and the in-memory stand-in. */
import { tempDir } from '../test/helpers/peers.js';
import { describeLogReaderContract } from '../test/helpers/log-reader-contract.js';
import { MemoryLog } from '../test/helpers/uplink/memory-log.js';
import { silentLogger } from '../src/core/log.js';
import { openRingLog } from './index.js';
import { bufferSchema } from './schema.js';

describeLogReaderContract('ring log', async () => {
  const dir = tempDir();
  const log = await openRingLog({ dir: dir.path, gatewayId: 'gw-contract', config: bufferSchema.parse({}), logger: silentLogger });
  return {
    append: (events) => log.append(events),
    reader: (name) => log.reader(name),
    close: async () => {
      await log.close();
      dir.cleanup();
    },
  };
});

describeLogReaderContract('in-memory log (the uplink tests\' stand-in)', async () => {
  const log = new MemoryLog('gw-contract');
  return { append: (events) => log.append(events), reader: (name) => log.reader(name), close: () => {} };
});
