/**
 * MQTT packet fuzzing: valid packets made with mqtt-packet, then mutated the ways a broken or
 * hostile client mangles them (bit flips, wrong and huge remaining lengths, truncated
 * variable-length integers, invalid UTF-8 and wildcard topics, reserved packet types, bad flags,
 * random garbage). A seeded PRNG makes every run reproducible: the seed is in the report.
 *
 * `runFuzz` drives many concurrent connections against a broker; each connection sends a CONNECT,
 * then a few cases, each followed by a PINGREQ, then closes its side. A case counts as processed
 * when the broker answered the PINGREQ after it (it parsed past the case and lived), or closed
 * the connection because of it.
 */
import { connect, type Socket } from 'node:net';
import mqttPacket from 'mqtt-packet';
import { mulberry32 } from '../../drivers/simulator/index.js';

/** mulberry32: small, fast, seedable (the simulator's). */
export const prng = mulberry32;

export class Fuzzer {
  readonly rnd: () => number;
  /** Cases made, by mutation kind. */
  readonly kinds: Record<string, number> = {};

  constructor(seed: number) {
    this.rnd = prng(seed);
  }

  int(n: number): number {
    return Math.floor(this.rnd() * n);
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }

  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }

  topic(): string {
    const levels = 1 + this.int(5);
    const parts: string[] = [];
    for (let i = 0; i < levels; i++) {
      parts.push(
        this.pick([
          'fuzz',
          'sensors',
          'a',
          'b',
          '',
          'x'.repeat(1 + this.int(40)),
          'ünï',
          '温度',
          '$SYS',
          String(this.int(1000)),
        ]),
      );
    }
    return parts.join('/');
  }

  payload(): Buffer {
    switch (this.int(6)) {
      case 0:
        return Buffer.alloc(0);
      case 1:
        return Buffer.from(JSON.stringify({ value: this.rnd() * 100, unit: 'C' }));
      case 2:
        return Buffer.from(String(this.rnd() * 1e6));
      case 3:
        return this.bytes(this.int(64));
      case 4:
        return Buffer.from('{"a":'.repeat(this.int(50)));
      default:
        return Buffer.from('x'.repeat(this.int(2000)));
    }
  }

  connect(version: 4 | 5 = 4): Buffer {
    return mqttPacket.generate(
      {
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: version,
        clean: true,
        clientId: `fz-${this.int(1e9)}`,
        keepalive: 30,
      },
      { protocolVersion: version },
    );
  }

  /** A well-formed packet of any type a client may send (and a few it may not). */
  valid(version: 4 | 5): Buffer {
    const opts = { protocolVersion: version };
    const messageId = 1 + this.int(65535);
    const packets: mqttPacket.Packet[] = [
      {
        cmd: 'publish',
        topic: this.topic(),
        payload: this.payload(),
        qos: this.pick([0, 1, 2] as const),
        retain: false,
        dup: false,
        messageId,
      },
      { cmd: 'publish', topic: this.topic(), payload: this.payload(), qos: 0, retain: this.rnd() < 0.1, dup: false },
      {
        cmd: 'subscribe',
        messageId,
        subscriptions: [
          { topic: this.pick(['#', 'fuzz/+', '$SYS/#', this.topic()]), qos: this.pick([0, 1, 2] as const) },
        ],
      },
      { cmd: 'unsubscribe', messageId, unsubscriptions: [this.topic()] },
      { cmd: 'puback', messageId },
      { cmd: 'pubrec', messageId },
      { cmd: 'pubrel', messageId },
      { cmd: 'pubcomp', messageId },
      { cmd: 'pingreq' },
      { cmd: 'connack', returnCode: 0, reasonCode: 0, sessionPresent: false },
      { cmd: 'suback', messageId, granted: [0] },
    ];
    return mqttPacket.generate(this.pick(packets), opts);
  }

  /** One fuzz case: bytes to send after a CONNECT, and the kind of mutation. */
  next(version: 4 | 5 = 4): { kind: string; bytes: Buffer } {
    const kinds = [
      'bitflip',
      'bitflip',
      'bytes',
      'wrong-length',
      'truncated-varint',
      'huge-length',
      'invalid-utf8-topic',
      'wildcard-topic',
      'nul-topic',
      'reserved-type',
      'bad-flags',
      'truncated',
      'garbage',
      'second-connect',
      'valid',
    ] as const;
    const kind = this.pick(kinds);
    this.kinds[kind] = (this.kinds[kind] ?? 0) + 1;
    return { kind, bytes: this.mutate(kind, version) };
  }

  private mutate(kind: string, version: 4 | 5): Buffer {
    const base = this.valid(version);
    switch (kind) {
      case 'bitflip': {
        const b = Buffer.from(base);
        const flips = 1 + this.int(8);
        for (let i = 0; i < flips; i++) {
          const at = this.int(b.length);
          b[at] ^= 1 << this.int(8);
        }
        return b;
      }
      case 'bytes': {
        // Insert, delete or overwrite a run of bytes.
        const at = this.int(base.length);
        const run = this.bytes(1 + this.int(8));
        const op = this.int(3);
        if (op === 0) return Buffer.concat([base.subarray(0, at), run, base.subarray(at)]);
        if (op === 1) return Buffer.concat([base.subarray(0, at), base.subarray(at + run.length)]);
        const b = Buffer.from(base);
        run.copy(b, at);
        return b;
      }
      case 'wrong-length': {
        // The remaining length says more or less than what follows.
        const body = base.subarray(1 + varintLength(base, 1));
        const claimed = Math.max(0, body.length + this.pick([-3, -1, 1, 7, 200, 16_000]));
        return Buffer.concat([base.subarray(0, 1), encodeVarint(claimed), body]);
      }
      case 'truncated-varint':
        // Continuation bit set on every length byte: 4 (the limit), or 5 (one too many).
        return Buffer.from([base[0], 0xff, 0xff, 0xff, ...(this.rnd() < 0.5 ? [0xff] : [0xff, 0x01])]);
      case 'huge-length':
        // 268 MB claimed, a few bytes given: must cost no memory.
        return Buffer.concat([
          Buffer.from([0x30 | (this.int(2) << 1), 0xff, 0xff, 0xff, 0x7f]),
          this.bytes(this.int(100)),
        ]);
      case 'invalid-utf8-topic':
        return rawPublish(
          Buffer.concat([
            Buffer.from('fuzz/'),
            Buffer.from(
              this.pick([[0xc3, 0x28], [0xff], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf8, 0x88, 0x80, 0x80, 0x80]]),
            ),
          ]),
          this.payload(),
          this.int(2) as 0 | 1,
        );
      case 'wildcard-topic':
        return rawPublish(
          Buffer.from(this.pick(['fuzz/+/x', '#', 'fuzz/#', '+', 'a/b#', 'a+/b'])),
          this.payload(),
          this.int(2) as 0 | 1,
        );
      case 'nul-topic':
        return rawPublish(Buffer.from('fuzz/a\u0000b'), this.payload(), this.int(2) as 0 | 1);
      case 'reserved-type':
        return Buffer.concat([Buffer.from([this.pick([0x00, 0xf0]), 2]), this.bytes(2)]);
      case 'bad-flags': {
        const b = Buffer.from(base);
        b[0] = (b[0] & 0xf0) | this.int(16);
        return b;
      }
      case 'truncated':
        return base.subarray(0, this.int(base.length));
      case 'garbage':
        return this.bytes(1 + this.int(300));
      case 'second-connect':
        return this.connect(version);
      default:
        return base;
    }
  }
}

/** A PUBLISH with raw topic bytes (mqtt-packet would encode any string as valid UTF-8). */
export function rawPublish(topic: Buffer, payload: Buffer, qos: 0 | 1): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(topic.length);
  const id = qos ? Buffer.from([0x12, 0x34]) : Buffer.alloc(0);
  const body = Buffer.concat([len, topic, id, payload]);
  return Buffer.concat([Buffer.from([0x30 | (qos << 1)]), encodeVarint(body.length), body]);
}

export function encodeVarint(n: number): Buffer {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0 && out.length < 4);
  return Buffer.from(out);
}

function varintLength(b: Buffer, at: number): number {
  let n = 0;
  while (at + n < b.length && b[at + n] & 0x80 && n < 4) n++;
  return n + 1;
}

const PINGREQ = Buffer.from([0xc0, 0x00]);

export interface FuzzStats {
  connections: number;
  casesSent: number;
  /** Cases the broker parsed past and answered the PINGREQ after. */
  survived: number;
  /** Cases after which the broker closed the connection. */
  closedBy: number;
  /** Connections that neither answered nor closed in time (the fuzzer then closed them). */
  stalled: number;
}

/**
 * Fuzzes the broker at host:port until `cases` cases are processed (or `deadlineMs` passes),
 * over `concurrency` connections at a time.
 */
export async function runFuzz(opts: {
  port: number;
  host?: string;
  cases: number;
  concurrency: number;
  seed: number;
  deadlineMs: number;
}): Promise<FuzzStats & { kinds: Record<string, number> }> {
  const fuzzer = new Fuzzer(opts.seed);
  const stats: FuzzStats = { connections: 0, casesSent: 0, survived: 0, closedBy: 0, stalled: 0 };
  const deadline = Date.now() + opts.deadlineMs;
  const processed = () => stats.survived + stats.closedBy;

  const oneConnection = (): Promise<void> =>
    new Promise((resolve) => {
      const version: 4 | 5 = fuzzer.rnd() < 0.2 ? 5 : 4;
      const cases = Array.from({ length: 1 + fuzzer.int(6) }, () => fuzzer.next(version).bytes);
      // One connection in ten starts with a mangled CONNECT.
      const hello = fuzzer.rnd() < 0.1 ? fuzzer.next(version).bytes : fuzzer.connect(version);
      let acked = 0;
      let done = false;
      let connected = false;
      const sock: Socket = connect(opts.port, opts.host ?? '127.0.0.1');
      stats.connections++;
      const finish = (how: 'closed' | 'stalled' | 'ended') => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        clearTimeout(quiet);
        sock.destroy();
        if (how === 'stalled') stats.stalled++;
        // A close before every ping was answered ends the connection at the next unanswered case:
        // the broker refused it, or (an incomplete packet) met the end of our stream inside it.
        else if (how === 'closed' && connected && acked < cases.length) stats.closedBy++;
        resolve();
      };
      const timer = setTimeout(() => finish('stalled'), 5000);
      // Once the broker has said nothing for a while, our side ends: a case it is still waiting on
      // (a length claim longer than the bytes given) then meets the end of the stream.
      let quiet: NodeJS.Timeout | undefined;
      const idle = () => {
        clearTimeout(quiet);
        quiet = setTimeout(() => sock.end(), 200);
      };
      sock.on('connect', () => {
        connected = true;
        const parts = [hello];
        for (const c of cases) parts.push(c, PINGREQ);
        stats.casesSent += cases.length;
        sock.write(Buffer.concat(parts));
        idle();
      });
      // What comes back is parsed properly: forwarded publishes of any length sit between the PINGRESPs.
      const parser = mqttPacket.parser({ protocolVersion: version });
      parser.on('packet', (p) => {
        if (p.cmd !== 'pingresp') return;
        acked++;
        stats.survived++;
        if (acked >= cases.length) finish('ended');
      });
      parser.on('error', () => {});
      sock.on('data', (d: Buffer) => {
        idle();
        parser.parse(d);
      });
      sock.on('error', () => finish('closed'));
      sock.on('close', () => finish('closed'));
    });

  const worker = async () => {
    while (processed() < opts.cases && Date.now() < deadline) await oneConnection();
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  return { ...stats, kinds: fuzzer.kinds };
}
