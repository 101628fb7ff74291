/**
 * One Modbus master connection (a TCP socket or a serial port) and the queue in front of it.
 *
 * Guarantees: requests on one bus run one at a time, in arrival order, each bounded by its timeout
 * (plus a hard guard, so a lost callback in the library cannot stall the queue); on a serial line,
 * consecutive frames are separated by the inter-frame gap of the line's speed (3.5 character
 * times, 1.75 ms above 19200 baud), and a timed-out or garbled exchange is followed by one more
 * timeout of silence (50 ms to 1 s) so a late answer is discarded rather than taken for the next
 * one. The connection is (re)opened lazily by the next request after it dropped. Buses are shared by key (the serial path, or host:port): two drivers naming the
 * same port use the same master and queue, as an RS-485 line allows only one.
 */
import { createRequire } from 'node:module';
import type { ModbusRTU as ModbusClient } from 'modbus-serial/ModbusRTU.js';
import type { Table } from './plan.js';

export type { ModbusClient };

// modbus-serial is CommonJS whose typings declare an ES default export; require() gets the class itself.
const ModbusRTU = createRequire(import.meta.url)('modbus-serial') as typeof ModbusClient;

export type BusTarget =
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'rtu'; path: string; baudRate: number; parity: 'none' | 'even' | 'odd'; dataBits: 7 | 8; stopBits: 1 | 2 };

/** A failure classified into the reasons health counts. */
export class ModbusFailure extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** Silent interval between two RTU frames, in ms (Modbus over serial line v1.02, 2.5.1.1). */
export function interFrameGapMs(t: Extract<BusTarget, { kind: 'rtu' }>): number {
  if (t.baudRate > 19200) return 1.75;
  const bitsPerChar = 1 + t.dataBits + (t.parity === 'none' ? 0 : 1) + t.stopBits;
  return (3.5 * bitsPerChar * 1000) / t.baudRate;
}

export function classify(err: unknown): ModbusFailure {
  if (err instanceof ModbusFailure) return err;
  const e = err as { message?: string; errno?: string; code?: string; modbusCode?: number };
  const msg = e?.message ?? String(err);
  let reason = 'error';
  if (e?.modbusCode !== undefined) reason = 'exception';
  else if (e?.errno === 'ETIMEDOUT' || /timed out/i.test(msg)) reason = 'timeout';
  else if (/CRC/i.test(msg)) reason = 'crc';
  else if (/Data length error/i.test(msg)) reason = 'short-frame';
  else if (/Unexpected data error/i.test(msg)) reason = 'wrong-unit';
  else if (
    e?.errno === 'ECONNREFUSED' ||
    e?.code === 'ECONNREFUSED' ||
    /ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENETUNREACH/.test(msg)
  )
    reason = 'connect';
  else if (/Port Not Open/i.test(msg)) reason = 'not-open';
  else if (e?.code === 'ENOENT' || /No such file|ENOENT|cannot open|Error: Error/i.test(msg)) reason = 'open';
  return new ModbusFailure(reason, msg);
}

export class ModbusBus {
  private client?: ModbusClient;
  private opening?: Promise<ModbusClient>;
  private tail: Promise<unknown> = Promise.resolve();
  private lastFrameEnd = 0;
  private extraGapMs = 0;
  private tcpTimeoutsInARow = 0;
  private closed = false;
  readonly gapMs: number;
  refs = 0;

  constructor(readonly target: BusTarget) {
    this.gapMs = target.kind === 'rtu' ? interFrameGapMs(target) : 0;
  }

  get isOpen(): boolean {
    return this.client?.isOpen === true;
  }

  /** Runs one read on the bus, after every request queued before it. */
  read(table: Table, unitId: number, address: number, count: number, timeoutMs: number): Promise<number[] | boolean[]> {
    return this.enqueue(unitId, timeoutMs, async (client) => {
      const res =
        table === 'holding'
          ? await client.readHoldingRegisters(address, count)
          : table === 'input'
            ? await client.readInputRegisters(address, count)
            : table === 'coil'
              ? await client.readCoils(address, count)
              : await client.readDiscreteInputs(address, count);
      // Coil reads return whole bytes of bits: keep only those asked for.
      return table === 'coil' || table === 'discrete'
        ? (res.data as boolean[]).slice(0, count)
        : (res.data as number[]);
    });
  }

  /**
   * Writes one coil (function 5), one register (function 6) or several registers (function 16),
   * in the same queue as the reads, so a write never interleaves with a poll on the line.
   */
  write(table: 'coil' | 'holding', unitId: number, address: number, data: boolean | number[], timeoutMs: number): Promise<void> {
    return this.enqueue(unitId, timeoutMs, async (client) => {
      if (table === 'coil') await client.writeCoil(address, data as boolean);
      else if ((data as number[]).length === 1) await client.writeRegister(address, (data as number[])[0]);
      else await client.writeRegisters(address, data as number[]);
    });
  }

  private enqueue<T>(unitId: number, timeoutMs: number, op: (client: ModbusClient) => Promise<T>): Promise<T> {
    const run = this.tail.then(() => this.execute(unitId, timeoutMs, op));
    // The queue continues whatever this request's outcome.
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async execute<T>(unitId: number, timeoutMs: number, op: (client: ModbusClient) => Promise<T>): Promise<T> {
    if (this.closed) throw new ModbusFailure('stopped', 'the driver is stopping');
    const client = await this.open(timeoutMs);
    await this.waitGap();
    if (this.target.kind === 'rtu') discardStaleInput(client);
    client.setID(unitId);
    client.setTimeout(timeoutMs);
    let guard: NodeJS.Timeout | undefined;
    try {
      const hard = new Promise<never>((_, reject) => {
        guard = setTimeout(
          () => reject(new ModbusFailure('timeout', `no answer within ${timeoutMs} ms`)),
          timeoutMs + 500,
        );
      });
      const res = await Promise.race([op(client), hard]);
      this.tcpTimeoutsInARow = 0;
      return res;
    } catch (err) {
      const failure = classify(err);
      if (failure.reason === 'exception') this.tcpTimeoutsInARow = 0; // an exception is an answer too
      // After a timeout or a garbled frame the slave may still be talking, and RTU has no
      // transaction id to tell its late answer from the answer to the next request. Keep the line
      // quiet for one more timeout (50 ms to 1 s) so a late answer lands in the gap and is
      // discarded. A dead unit costs bus time for it; its circuit breaker bounds how often.
      if (this.target.kind === 'rtu' && failure.reason !== 'exception') {
        this.extraGapMs = Math.min(1000, Math.max(50, this.gapMs * 10, timeoutMs));
      }
      if (failure.reason === 'timeout' && this.target.kind === 'tcp' && ++this.tcpTimeoutsInARow >= 2) {
        // Timeouts on an open socket with no answer in between usually mean a dead connection
        // behind it (a restarted PLC or NAT); reconnecting clears it. One dead unit id behind a
        // Modbus gateway does not cause reconnects: the live units' answers reset the count.
        this.tcpTimeoutsInARow = 0;
        this.dropClient();
      }
      throw failure;
    } finally {
      clearTimeout(guard);
      this.lastFrameEnd = performance.now();
    }
  }

  private async waitGap(): Promise<void> {
    if (this.gapMs === 0 && this.extraGapMs === 0) return;
    const until = this.lastFrameEnd + this.gapMs + this.extraGapMs;
    this.extraGapMs = 0;
    // Node's timers may fire up to a millisecond early against the monotonic clock: check again.
    for (let wait = until - performance.now(); wait > 0; wait = until - performance.now()) {
      await new Promise((r) => setTimeout(r, Math.ceil(wait)));
    }
  }

  private async open(timeoutMs: number): Promise<ModbusClient> {
    if (this.client?.isOpen) return this.client;
    if (!this.opening) {
      this.opening = this.connect(timeoutMs).finally(() => {
        this.opening = undefined;
      });
    }
    return this.opening;
  }

  private async connect(timeoutMs: number): Promise<ModbusClient> {
    this.dropClient();
    const client = new ModbusRTU();
    // Errors after connect surface as failed requests; an unhandled 'error' event would crash the process.
    client.on('error', () => undefined);
    const t = this.target;
    let guard: NodeJS.Timeout | undefined;
    try {
      const connecting =
        t.kind === 'tcp'
          ? client.connectTCP(t.host, { port: t.port, timeout: timeoutMs } as never)
          : client.connectRTUBuffered(t.path, {
              baudRate: t.baudRate,
              parity: t.parity,
              dataBits: t.dataBits,
              stopBits: t.stopBits,
            });
      await Promise.race([
        connecting,
        new Promise<never>((_, reject) => {
          guard = setTimeout(
            () => reject(new ModbusFailure('connect', `could not connect within ${timeoutMs} ms`)),
            timeoutMs + 500,
          );
        }),
      ]);
    } catch (err) {
      closeQuietly(client);
      const f = classify(err);
      const where = t.kind === 'tcp' ? `${t.host}:${t.port}` : t.path;
      // Whatever the library said, the port did not open: on TCP a connect failure, on serial an open failure.
      throw new ModbusFailure(t.kind === 'tcp' ? 'connect' : 'open', `cannot open ${where}: ${f.message}`);
    } finally {
      clearTimeout(guard);
    }
    if (this.closed) {
      closeQuietly(client);
      throw new ModbusFailure('stopped', 'the driver is stopping');
    }
    this.client = client;
    this.lastFrameEnd = performance.now();
    return client;
  }

  private dropClient(): void {
    if (this.client) closeQuietly(this.client);
    this.client = undefined;
  }

  /** Closes the port now: a request in flight fails, later ones are refused. */
  async close(): Promise<void> {
    this.closed = true;
    const c = this.client;
    this.client = undefined;
    if (c) await new Promise<void>((resolve) => closeQuietly(c, resolve));
  }
}

/**
 * RTU has no transaction ids: modbus-serial's buffered RTU port keeps unmatched bytes (the tail of a
 * garbled frame, a late answer) and may take them for the answer to the next request. The line is
 * quiet now (the gap was waited), so whatever is buffered is stale: drop it. `_port._buffer` is
 * modbus-serial's internal; if a future version renames it, this does nothing.
 */
function discardStaleInput(client: ModbusClient): void {
  const port = (client as unknown as { _port?: { _buffer?: unknown } })._port;
  if (port && Buffer.isBuffer(port._buffer) && port._buffer.length > 0) port._buffer = Buffer.alloc(0);
}

function closeQuietly(client: ModbusClient, done?: () => void): void {
  let called = false;
  const finish = () => {
    if (!called) {
      called = true;
      done?.();
    }
  };
  try {
    if (client.isOpen) client.close(finish);
    else finish();
  } catch {
    finish();
  }
  // A port that never calls back must not hold up stop().
  setTimeout(finish, 500).unref();
}

const buses = new Map<string, ModbusBus>();

function keyOf(t: BusTarget): string {
  return t.kind === 'tcp' ? `tcp:${t.host}:${t.port}` : `rtu:${t.path}`;
}

/** The bus of a target, shared with any other driver on the same port; release it when done. */
export function acquireBus(target: BusTarget): ModbusBus {
  const key = keyOf(target);
  let bus = buses.get(key);
  if (!bus) {
    bus = new ModbusBus(target);
    buses.set(key, bus);
  }
  bus.refs++;
  return bus;
}

export async function releaseBus(bus: ModbusBus): Promise<void> {
  bus.refs--;
  if (bus.refs > 0) return;
  const key = keyOf(bus.target);
  if (buses.get(key) === bus) buses.delete(key);
  await bus.close();
}
