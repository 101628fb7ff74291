/**
 * The baseline broker for the ingest benchmarks: aedes with its default in-memory persistence and
 * no hooks, the way the gateway configures it otherwise. `node dist/test/bench/aedes-bare.js PORT`;
 * prints "ready" once it listens.
 */
import { createServer } from 'node:net';
import { Aedes } from 'aedes';

const port = Number(process.argv[2]);
const aedes = await Aedes.createBroker({ concurrency: 1000, heartbeatInterval: 60_000 });
const server = createServer(aedes.handle);
server.listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => {
  server.close();
  aedes.close(() => process.exit(0));
});
