/** Starts the cloud-side subscriber of the uplink benches (uplink-subscriber.ts) in a worker thread. */
import { Worker } from 'node:worker_threads';

export interface CloudSubscriber {
  /** Backlog events (seq <= backlogLast) seen so far. */
  seenBacklog(): number;
  /** Stops it and returns the live events' delivery latencies (ms). */
  report(): Promise<number[]>;
  terminate(): Promise<number>;
}

export async function startCloudSubscriber(opts: {
  kind: 'mqtt' | 'nats';
  url: string;
  topic: string;
  backlogLast: number;
}): Promise<CloudSubscriber> {
  const worker = new Worker(new URL('./uplink-subscriber.js', import.meta.url), { workerData: opts });
  let seen = 0;
  let onReport: (l: number[]) => void = () => {};
  await new Promise<void>((resolve, reject) => {
    worker.once('error', reject);
    worker.on('message', (m: { ready?: boolean; seenBacklog?: number; latencies?: number[] }) => {
      if (m.ready) resolve();
      if (m.seenBacklog !== undefined) seen = m.seenBacklog;
      if (m.latencies) onReport(m.latencies);
    });
  });
  return {
    seenBacklog: () => seen,
    report: () =>
      new Promise<number[]>((resolve) => {
        onReport = resolve;
        worker.postMessage('report');
      }),
    terminate: () => worker.terminate(),
  };
}

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}
