/**
 * Raw-socket MQTT 3.1.1 load generator (an mqtt.js client cannot load a broker: it caps near
 * 15-60k msg/s itself). Each client pre-builds one PUBLISH template and patches the packet id and
 * a counter into copies, many packets per socket write; QoS 1 keeps a window of unacknowledged
 * messages and measures publish→PUBACK latency of every message; `rate` paces a steady load.
 * QoS 0 ends with a PINGREQ: the PINGRESP comes back after the broker processed every PUBLISH.
 */
import { execFile } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';

export interface LoadOptions {
  port: number;
  host?: string;
  qos: 0 | 1;
  clients?: number;
  /** Messages per client. */
  messages: number;
  /** Payload bytes (JSON `{"c":C,"v":21.5,"i":N}` padded with spaces). */
  size?: number;
  /** Unacknowledged QoS 1 messages per client. */
  window?: number;
  /** Total msg/s across clients; 0 = as fast as the broker takes them. */
  rate?: number;
  /**
   * With `rate`: `spread` (default) starts each client at its own point of the message period, as
   * independent sensors are; `aligned` makes every client publish in the same instant, bursts of
   * `clients` messages (their latency then includes waiting behind the rest of the burst).
   */
  phase?: 'spread' | 'aligned';
  /** `%c` is replaced with the client number. */
  topic?: string;
  username?: string;
  password?: string;
  /** Give up (reject) after this long. */
  timeoutMs?: number;
}

export interface LoadResult {
  messages: number;
  seconds: number;
  rate: number;
  /** QoS 1 only: publish→PUBACK latency in ms. */
  latency?: { p50: number; p99: number; max: number; samples: number };
}

function varint(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

function connectPacket(clientId: string, username?: string, password?: string): Buffer {
  const str = (s: string) => {
    const b = Buffer.from(s, 'utf8');
    const l = Buffer.alloc(2);
    l.writeUInt16BE(b.length);
    return Buffer.concat([l, b]);
  };
  let flags = 0x02; // clean session
  const parts = [str('MQTT'), Buffer.from([4]), Buffer.alloc(1), Buffer.from([0, 60]), str(clientId)];
  if (username !== undefined) {
    flags |= 0x80;
    parts.push(str(username));
  }
  if (password !== undefined) {
    flags |= 0x40;
    parts.push(str(password));
  }
  parts[2][0] = flags;
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([0x10, ...varint(body.length)]), body]);
}

/** Runs the load; resolves when every client is done (all PUBACKs, or the PINGRESP for QoS 0). */
export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const clients = opts.clients ?? 10;
  const size = opts.size ?? 100;
  const window = opts.window ?? 1000;
  const rate = opts.rate ?? 0;
  const total = clients * opts.messages;
  const latencies = opts.qos === 1 ? new Float64Array(total) : null;
  let latencyCount = 0;
  const sockets: Socket[] = [];
  let t0 = 0;
  let ready = 0;
  let startAll: () => void = () => {};
  const started = new Promise<void>((r) => {
    startAll = r;
  });

  const client = (c: number) =>
    new Promise<void>((resolve, reject) => {
      const topic = Buffer.from((opts.topic ?? 'bench/%c/temp').replace('%c', String(c)), 'utf8');
      const head = `{"c":${c},"v":21.5,"i":`;
      // A valid JSON body (as sensors send): the counter is 10 digits without a leading zero.
      const body = Buffer.from(`${head}1000000000}`.padEnd(size, ' '));
      const counterAt = head.length;
      const remaining = 2 + topic.length + (opts.qos ? 2 : 0) + body.length;
      const fixed = Buffer.from([0x30 | (opts.qos << 1), ...varint(remaining)]);
      const template = Buffer.concat([fixed, Buffer.from([topic.length >> 8, topic.length & 0xff]), topic, Buffer.alloc(opts.qos ? 2 : 0), body]);
      const idAt = fixed.length + 2 + topic.length;
      const bodyAt = idAt + (opts.qos ? 2 : 0);
      const sentAt = new Float64Array(65536);
      let sent = 0;
      let acked = 0;
      let done = false;
      let waitingDrain = false;
      let timer: NodeJS.Timeout | null = null;
      const perClientRate = rate > 0 ? rate / clients : 0;
      // Where in its message period this client publishes (0: at t0), as a fraction of the period.
      const offset = opts.phase === 'aligned' ? 0 : c / clients;
      const s = connect(opts.port, opts.host ?? '127.0.0.1');
      s.setNoDelay(true);
      sockets.push(s);
      const finish = () => {
        if (done) return;
        done = true;
        if (timer) clearTimeout(timer);
        s.end();
        resolve();
      };
      const pump = () => {
        timer = null;
        if (done || waitingDrain) return;
        const allowed = perClientRate ? Math.min(opts.messages, Math.floor(((performance.now() - t0) / 1000) * perClientRate + 1 - offset)) : opts.messages;
        let n = 0;
        const max = 256;
        const batch = Buffer.allocUnsafe(template.length * max);
        while (sent < allowed && (opts.qos === 0 || sent - acked < window) && n < max) {
          sent++;
          const o = n * template.length;
          template.copy(batch, o);
          const id = ((sent - 1) % 65535) + 1;
          if (opts.qos) {
            batch[o + idAt] = id >> 8;
            batch[o + idAt + 1] = id & 0xff;
            sentAt[id] = performance.now();
          }
          batch.write(String(1_000_000_000 + sent), o + bodyAt + counterAt, 'latin1');
          n++;
        }
        if (n > 0) {
          const ok = s.write(n === max ? batch : batch.subarray(0, n * template.length));
          if (opts.qos === 0 && sent >= opts.messages) {
            s.write(Buffer.from([0xc0, 0x00]));
            return;
          }
          if (!ok) {
            waitingDrain = true;
            s.once('drain', () => {
              waitingDrain = false;
              pump();
            });
            return;
          }
        }
        if (sent < opts.messages && (opts.qos === 0 || sent - acked < window)) {
          timer = setTimeout(pump, perClientRate ? 1 : 0);
        }
      };
      let pending = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        const buf = pending.length ? Buffer.concat([pending, d]) : d;
        let o = 0;
        while (buf.length - o >= 2) {
          const type = buf[o] >> 4;
          let len = 0;
          let mul = 1;
          let i = o + 1;
          for (;;) {
            if (i >= buf.length) break;
            const b = buf[i++];
            len += (b & 0x7f) * mul;
            mul *= 128;
            if (!(b & 0x80)) break;
          }
          if (i + len > buf.length) break;
          if (type === 2) {
            if (buf[i + 1] !== 0) {
              reject(new Error(`CONNACK refused with code ${buf[i + 1]}`));
              s.destroy();
              return;
            }
            ready++;
            if (ready === clients) {
              t0 = performance.now();
              startAll();
            }
            void started.then(pump);
          } else if (type === 4) {
            const id = (buf[i] << 8) | buf[i + 1];
            acked++;
            if (latencies) latencies[latencyCount++] = performance.now() - sentAt[id];
            if (acked >= opts.messages) finish();
            else if (!timer && !waitingDrain && sent - acked <= window / 2) pump();
          } else if (type === 13) {
            finish();
          }
          o = i + len;
        }
        pending = o < buf.length ? Buffer.from(buf.subarray(o)) : Buffer.alloc(0);
      });
      s.on('error', (err) => {
        if (!done) reject(new Error(`client ${c}: ${err.message}`));
      });
      s.on('close', () => {
        if (!done) reject(new Error(`client ${c}: the broker closed the connection after ${sent} sent, ${acked} acknowledged`));
      });
      s.write(connectPacket(`bench-${process.pid}-${c}`, opts.username, opts.password));
    });

  const timeout = opts.timeoutMs ?? 120_000;
  let guard: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      Promise.all(Array.from({ length: clients }, (_, c) => client(c))),
      new Promise((_, reject) => {
        guard = setTimeout(() => reject(new Error(`load did not finish within ${timeout} ms`)), timeout);
      }),
    ]);
  } finally {
    clearTimeout(guard);
    for (const s of sockets) s.destroy();
  }
  const seconds = (performance.now() - t0) / 1000;
  const result: LoadResult = { messages: total, seconds, rate: total / seconds };
  if (latencies && latencyCount > 0) {
    const sorted = latencies.subarray(0, latencyCount).sort();
    const at = (q: number) => sorted[Math.min(latencyCount - 1, Math.floor(q * latencyCount))];
    result.latency = { p50: at(0.5), p99: at(0.99), max: sorted[latencyCount - 1], samples: latencyCount };
  }
  return result;
}

/**
 * `runLoad` in a child process of its own, as sensors are separate from the broker's host process
 * tree. Measured here: run inside the benchmark process after the heavy rounds, the generator's own
 * pauses put bare aedes' p99 at a steady 10k msg/s at 14-17 ms instead of the 2 ms a fresh
 * generator measures, which hid the broker's figure in the generator's.
 */
export function runLoadInChild(opts: LoadOptions & { warmup?: number }): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [fileURLToPath(import.meta.url), JSON.stringify(opts)], { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`load generator failed: ${stderr.trim() || err.message}`));
      else resolve(JSON.parse(stdout) as LoadResult);
    });
  });
}

// `node mqtt-load.js '<LoadOptions JSON>'` prints the LoadResult as JSON (runLoadInChild); `warmup`
// messages per client go first, unmeasured, so the generator's own code is compiled when it counts.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const opts = JSON.parse(process.argv[2]) as LoadOptions & { warmup?: number };
  const warm = opts.warmup ? runLoad({ ...opts, messages: opts.warmup }) : Promise.resolve();
  warm.then(() => runLoad(opts)).then(
    (r) => process.stdout.write(JSON.stringify(r)),
    (err: Error) => {
      process.stderr.write(err.message);
      process.exitCode = 1;
    },
  );
}
