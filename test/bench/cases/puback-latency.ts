/**
 * Durable PUBACK latency: 100 sensors, each publishing QoS 1 at 100 msg/s and waiting for its
 * PUBACK before the next (window 1), 10k msg/s in all, against the gateway (every PUBACK waits for
 * the ring log's fsync), a non-durable Mosquitto and a bare aedes, in the same run, rounds
 * alternating. Reported: PUBACK p50/p99 of each, and what the gateway's group commit costs the
 * disk: fsyncs a second and write amplification (bytes the process wrote ÷ stored envelope bytes).
 *
 * The sensors publish at their own points of the 10 ms period, as independent devices do (the
 * goals apply to these figures). The same load with every sensor publishing in the same instant
 * (`aligned`: bursts of 100) is reported beside them as `puback.10k.aligned.*`: there a publish also
 * waits behind the rest of its burst, on every broker alike. A second gateway whose ring log is on
 * tmpfs (/dev/shm: fsync costs nothing there) shows what the broker, intake and group commit add
 * without the disk (`puback.10k.*.gateway_tmpfs`); the disk's own fsync latency is measured between
 * rounds (`puback.10k.fsync_floor.*`).
 */
import { closeSync, existsSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, startMosquitto } from '../../helpers/peers.js';
import { apiStatus, type Child, startBareAedes, startGateway } from '../gateway-proc.js';
import { type LoadResult, runLoadInChild } from '../mqtt-load.js';
import { writeBytes } from '../proc.js';
import type { BenchCase, BenchResult } from '../types.js';
import { envelopeBytes } from './buffer-ingest.js';

const CLIENTS = 100;
const RATE = 10_000;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * The disk's own floor under a durable PUBACK, measured beside the brokers: latency of appending one
 * commit's worth (~40 events, 6 KB) to a file and fdatasync-ing it, in the gateway's data directory.
 */
function fsyncFloor(dir: string, n = 300): number[] {
  const file = join(dir, 'fsync-floor.bin');
  const fd = openSync(file, 'a');
  const block = Buffer.alloc(6000, 0x61);
  const times: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      writeSync(fd, block);
      fdatasyncSync(fd);
      times.push(performance.now() - t);
    }
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
  return times.sort((a, b) => a - b);
}

interface BufferCounters {
  fsyncs?: number;
  commits?: number;
}

const bench: BenchCase = {
  name: 'puback-latency',
  description: 'QoS 1 PUBACK p50/p99, 100 clients x 100 msg/s, window 1: gateway vs non-durable Mosquitto vs bare aedes; fsyncs/s and write amplification',
  timeoutMs: 8 * 60_000,
  async run(ctx) {
    const rounds = ctx.quick ? 1 : 3;
    const seconds = ctx.quick ? 4 : 8;
    const perClient = (RATE / CLIENTS) * seconds;
    const children: Child[] = [];
    const mosquitto = await startMosquitto();
    let shmDir: string | null = null;
    try {
      const aedesPort = await freePort();
      children.push(await startBareAedes(aedesPort));
      const dataDir = ctx.tempDir('sluice-bench-puback-');
      const gw = await startGateway({
        root: ctx.root,
        dataDir,
        mqttPort: await freePort(),
        httpPort: await freePort(),
        configDir: ctx.tempDir('sluice-bench-cfg-'),
      });
      children.push(gw);
      shmDir = existsSync('/dev/shm') ? mkdtempSync(join('/dev/shm', 'sluice-bench-puback-')) : null;
      const gwShm = shmDir
        ? await startGateway({ root: ctx.root, dataDir: shmDir, mqttPort: await freePort(), httpPort: await freePort(), configDir: ctx.tempDir('sluice-bench-cfg-') })
        : null;
      if (gwShm) children.push(gwShm);
      const load = (port: number, messages = perClient, phase: 'spread' | 'aligned' = 'spread') =>
        runLoadInChild({ port, qos: 1, clients: CLIENTS, messages, size: 100, window: 1, rate: RATE, phase, warmup: Math.min(200, messages / 5) });
      const counters = async () => ((await apiStatus(gw.httpPort)) as { buffer?: BufferCounters }).buffer ?? {};

      ctx.log('warm-up');
      for (const port of [mosquitto.port, aedesPort, gw.mqttPort, ...(gwShm ? [gwShm.mqttPort] : [])]) await load(port, 200);
      const tmpfs: LoadResult[] = [];
      const sides: Record<'mosquitto' | 'aedes' | 'gateway', LoadResult[]> = { mosquitto: [], aedes: [], gateway: [] };
      const aligned: Record<'mosquitto' | 'aedes' | 'gateway', LoadResult[]> = { mosquitto: [], aedes: [], gateway: [] };
      const floor = { p50: [] as number[], p99: [] as number[] };
      let written = 0;
      let messages = 0;
      let fsyncs = 0;
      let commits = 0;
      let gwSeconds = 0;
      for (let r = 0; r < rounds; r++) {
        sides.mosquitto.push(await load(mosquitto.port));
        sides.aedes.push(await load(aedesPort));
        const w0 = writeBytes(gw.pid);
        const c0 = await counters();
        const g = await load(gw.mqttPort);
        const c1 = await counters();
        await new Promise((res) => setTimeout(res, 1500)); // LevelDB's background flush lands on this account
        written += writeBytes(gw.pid) - w0;
        // the generator's warm-up ran inside this window too, at the same steady rate
        const sent = g.messages + CLIENTS * Math.min(200, perClient / 5);
        messages += sent;
        gwSeconds += sent / RATE;
        fsyncs += (c1.fsyncs ?? 0) - (c0.fsyncs ?? 0);
        commits += (c1.commits ?? 0) - (c0.commits ?? 0);
        sides.gateway.push(g);
        if (gwShm) tmpfs.push(await load(gwShm.mqttPort));
        const f0 = fsyncFloor(dataDir);
        floor.p50.push(f0[Math.floor(f0.length / 2)]);
        floor.p99.push(f0[Math.floor(f0.length * 0.99)]);
        aligned.mosquitto.push(await load(mosquitto.port, perClient, 'aligned'));
        aligned.aedes.push(await load(aedesPort, perClient, 'aligned'));
        aligned.gateway.push(await load(gw.mqttPort, perClient, 'aligned'));
        const f = (x: LoadResult) => `p50 ${x.latency!.p50.toFixed(2)} / p99 ${x.latency!.p99.toFixed(2)} ms`;
        ctx.log(`round ${r + 1}: mosquitto ${f(sides.mosquitto.at(-1)!)}, aedes ${f(sides.aedes.at(-1)!)}, gateway ${f(g)}`);
        ctx.log(`round ${r + 1} aligned: mosquitto ${f(aligned.mosquitto.at(-1)!)}, aedes ${f(aligned.aedes.at(-1)!)}, gateway ${f(aligned.gateway.at(-1)!)}`);
      }
      const pct = (side: LoadResult[], q: 'p50' | 'p99') => median(side.map((x) => x.latency![q]));
      const results: BenchResult[] = [];
      for (const name of ['mosquitto', 'aedes'] as const) {
        results.push({ name: `puback.10k.p50.${name}`, value: pct(sides[name], 'p50'), unit: 'ms', rate: median(sides[name].map((x) => x.rate)) });
        results.push({ name: `puback.10k.p99.${name}`, value: pct(sides[name], 'p99'), unit: 'ms' });
      }
      const p50 = pct(sides.gateway, 'p50');
      const p99 = pct(sides.gateway, 'p99');
      const m99 = pct(sides.mosquitto, 'p99');
      results.push({ name: 'puback.10k.p50.gateway', value: p50, unit: 'ms', target: '<= 2 ms', pass: p50 <= 2, rate: median(sides.gateway.map((x) => x.rate)) });
      results.push({ name: 'puback.10k.p99.gateway', value: p99, unit: 'ms', baseline: m99, baselineName: 'puback.10k.p99.mosquitto', ratio: p99 / m99, target: "<= Mosquitto's p99", pass: p99 <= m99 });
      for (const name of ['mosquitto', 'aedes', 'gateway'] as const) {
        results.push({ name: `puback.10k.aligned.p50.${name}`, value: pct(aligned[name], 'p50'), unit: 'ms' });
        results.push({ name: `puback.10k.aligned.p99.${name}`, value: pct(aligned[name], 'p99'), unit: 'ms' });
      }
      if (tmpfs.length > 0) {
        results.push({ name: 'puback.10k.p50.gateway_tmpfs', value: pct(tmpfs, 'p50'), unit: 'ms', note: 'ring log on /dev/shm: no disk in the PUBACK' });
        results.push({ name: 'puback.10k.p99.gateway_tmpfs', value: pct(tmpfs, 'p99'), unit: 'ms' });
      }
      results.push({ name: 'puback.10k.fsync_floor.p50', value: median(floor.p50), unit: 'ms', note: '6 KB append + fdatasync in the data directory' });
      results.push({ name: 'puback.10k.fsync_floor.p99', value: median(floor.p99), unit: 'ms' });
      results.push({ name: 'puback.10k.fsyncs_per_s', value: fsyncs / gwSeconds, unit: 'fsync/s', commitsPerSecond: commits / gwSeconds, eventsPerFsync: messages / Math.max(1, fsyncs) });
      const wa = written / (messages * envelopeBytes());
      results.push({ name: 'puback.10k.write_amplification', value: wa, unit: 'bytes/byte', writtenBytes: written, events: messages });
      return results;
    } finally {
      for (const c of children.reverse()) await c.stop();
      await mosquitto.stop();
      if (shmDir) rmSync(shmDir, { recursive: true, force: true });
    }
  },
};

export default bench;
