// Child of the kill -9 crash test (ringlog-crash.test.ts): appends from several producers and
// consumes with one reader, printing every acknowledged append ("A first last") and every
// persisted reader commit ("C seq") on stdout (a pipe: synchronous on Linux, so a printed line is
// out of the process before the next instruction). Runs until it is killed.
import { openRingLog } from '../../dist/buffer/index.js';

const [dir, producers, config] = process.argv.slice(2);
// The config comes from the test, which reopens the log with the same one after each kill.
const log = await openRingLog({ dir, gatewayId: 'gw-crash', config: JSON.parse(config) });
const out = (line) => process.stdout.write(`${line}\n`);
out(`O ${log.stats().lastSeq}`);

async function producer(id) {
  for (let i = 0; ; i++) {
    const n = 1 + ((i * 7 + id) % 9);
    const events = Array.from({ length: n }, (_, j) => ({
      source: 'crash',
      topic: `p/${id}`,
      payload: { id, i, j, pad: 'x'.repeat((i * 13 + j) % 200) },
      kind: (i + j) % 97 === 0 ? 'anomaly' : 'reading',
    }));
    const r = await log.append(events);
    out(`A ${r.firstSeq} ${r.lastSeq}`);
  }
}

async function consumer() {
  const reader = log.reader('up');
  for (;;) {
    const batch = await reader.next(150, 1 << 20);
    if (batch.length === 0) {
      await reader.wait();
      continue;
    }
    await reader.commit(batch.at(-1).seq);
    // committedSeq is the normal lane's cursor: anomaly hand-outs (priority lane) move the other one
    if (batch[0].kind !== 'anomaly') out(`C ${batch.at(-1).seq}`);
  }
}

for (let p = 0; p < Number(producers); p++) void producer(p);
void consumer();
