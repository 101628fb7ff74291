/**
 * The cloud side of the uplink drain bench, in a worker thread so that parsing the batches does not
 * take CPU from the gateway's thread being measured: subscribes to the uplink's topic/subject, counts
 * backlog events and times live ones (receipt minus the event's `ts`, the gateway's acceptance time).
 * Posts `{ready}` once subscribed, `{seenBacklog, seenLive}` every 100 ms, and `{latencies}` on `report`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import mqtt from 'mqtt';
import { connect } from 'nats';

const { kind, url, topic, backlogLast } = workerData as {
  kind: 'mqtt' | 'nats';
  url: string;
  topic: string;
  backlogLast: number;
};
let seenBacklog = 0;
const latencies: number[] = [];

function onDoc(doc: Uint8Array): void {
  const now = Date.now();
  const parsed = JSON.parse(Buffer.from(doc).toString()) as { events: { seq: number; ts: number }[] };
  for (const e of parsed.events) {
    if (e.seq <= backlogLast) seenBacklog++;
    // `ts` is when the gateway accepted the event (stamped at the durable append).
    else latencies.push(now - e.ts);
  }
}

let close: () => Promise<unknown>;
if (kind === 'mqtt') {
  const c = await mqtt.connectAsync(url, { clean: true });
  c.on('message', (_t, p) => onDoc(p));
  await c.subscribeAsync(topic, { qos: 0 });
  close = () => c.endAsync();
} else {
  const nc = await connect({ servers: url });
  const sub = nc.subscribe(topic);
  void (async () => {
    for await (const m of sub) onDoc(m.data);
  })();
  await nc.flush();
  close = () => nc.close();
}
const ticker = setInterval(() => parentPort?.postMessage({ seenBacklog, seenLive: latencies.length }), 100);
parentPort?.on('message', async (m: string) => {
  if (m === 'report') {
    clearInterval(ticker);
    await close();
    parentPort?.postMessage({ latencies });
  }
});
parentPort?.postMessage({ ready: true });
