/**
 * The OPC UA client driver: one endpoint, its nodes read by subscription (the server reports
 * changes: monitored items with sampling interval, queue size and deadband) or by polling reads.
 *
 * Guarantees: every DataValue becomes a reading, bad and uncertain ones too (`quality`, `status`);
 * the source timestamp is `deviceTs`. The driver never stops by itself: a first connection that
 * fails is retried with exponential backoff (up to `maxBackoff`); once connected, node-opcua
 * reconnects and re-creates the session and its subscription after a server restart, and a
 * watchdog rebuilds everything from scratch when the subscription stays silent past three
 * keep-alive periods (a repair that did not happen). The server is one device in health: `down`
 * after `downAfter` failed attempts, when its last values are re-emitted once as `stale`.
 * Notifications are batched per event-loop turn and appended one batch at a time; at most
 * MAX_PENDING readings wait for the disk, further ones are dropped and counted (`overflow`).
 */
import type { EventInput } from '../../src/core/event.js';
import { DeviceTracker, Sleeper, statusEvent, untilDeadline } from '../device-health.js';
import type { Driver, DriverContext, DriverHealth, WritablePoint, WriteOutcome } from '../driver.js';
import type { WriteValue } from '../write/schema.js';
import { createClient, explainConnectError, pkiDirOf, retryForever, userIdentity } from './connect.js';
import { type OpcuaConfig, nodeName } from './schema.js';
import { type NodeHandle, type UaSession, UaSubscription, pollOnce, resolveNodes, writeNode } from './session.js';
import { mapDataValue } from './values.js';
import type { DataValue, OPCUAClient } from 'node-opcua-client';

const MAX_PENDING = 50_000;

export class OpcuaDriver implements Driver {
  readonly name: string;
  readonly type = 'opcua';
  private readonly source: string;
  private readonly tracker: DeviceTracker;
  private readonly nodes: NodeHandle[];
  private readonly sleeper = new Sleeper();
  private ctx?: DriverContext;
  private client?: OPCUAClient;
  private certificates?: { dispose(): Promise<void> };
  private session?: UaSession;
  private subscription?: UaSubscription;
  private loop?: Promise<void>;
  private stopping = false;
  /** The secure channel is open (false from a lost connection until it is re-established). */
  private connected = false;
  private pending: EventInput[] = [];
  private flushing = false;
  private pkiDir = '';
  /** Set by the watchdog or a lost session: the connection is rebuilt from scratch. */
  private rebuild?: () => void;

  constructor(private readonly config: OpcuaConfig) {
    this.name = config.name;
    this.source = `opcua:${config.name}`;
    this.tracker = new DeviceTracker(config.endpoint, config.downAfter);
    this.nodes = config.nodes.map((cfg) => {
      const name = nodeName(cfg);
      return { cfg, name, topic: cfg.topic ?? `opcua/${config.name}/${name}` };
    });
  }

  async start(ctx: DriverContext): Promise<void> {
    this.ctx = ctx;
    this.pkiDir = pkiDirOf(this.config, ctx.dataDir);
    this.loop = this.run();
  }

  async stop(deadline: number): Promise<void> {
    this.stopping = true;
    this.sleeper.abort();
    this.rebuild?.();
    await untilDeadline(this.loop ?? Promise.resolve(), deadline);
    this.tracker.set('stopped');
  }

  health(): DriverHealth {
    return { name: this.name, type: this.type, devices: [this.tracker.snapshot()] };
  }

  writablePoints(): WritablePoint[] {
    return this.nodes.flatMap((n) =>
      n.cfg.writable ? [{ point: n.name, device: this.tracker.device, writable: n.cfg.writable }] : [],
    );
  }

  async write(point: string, value: WriteValue, verify: boolean): Promise<WriteOutcome> {
    const node = this.nodes.find((n) => n.name === point);
    if (!node) throw new Error(`no node named "${point}"`);
    // A request on a lost connection would wait for the reconnection: a write fails now instead.
    if (!this.session || !this.connected) throw new Error(`not connected to ${this.config.endpoint}`);
    return writeNode(this.session, node, value, verify);
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.stopping) {
      try {
        await this.connectAndServe();
        attempt = 0;
      } catch (err) {
        if (this.stopping) break;
        const { reason, message } = explainConnectError(err, this.pkiDir);
        this.failure(reason, message);
        attempt++;
      } finally {
        await this.teardown();
      }
      if (this.stopping) break;
      const backoff = Math.min(this.config.maxBackoff, 500 * 2 ** Math.min(attempt, 20));
      await this.sleeper.sleep(attempt === 0 ? 200 : backoff * (0.8 + 0.4 * Math.random()));
    }
  }

  /** Connects, opens the session and reads; resolves when the connection must be rebuilt or on stop. */
  private async connectAndServe(): Promise<void> {
    const c = this.config;
    const { client, certificates } = await createClient({ ...c, pkiDir: this.pkiDir });
    this.client = client;
    this.certificates = certificates;
    const log = this.ctx?.logger;
    client.on('backoff', (n: number) => {
      if (n > 0) this.failure('connect', `cannot reach ${c.endpoint} (attempt ${n + 1})`);
    });
    client.on('connection_lost', () => {
      this.connected = false;
      this.failure('disconnected', `connection to ${c.endpoint} lost`);
    });
    client.on('after_reconnection', (err?: Error | null) => {
      if (err) this.failure('connect', `reconnection failed: ${err.message}`);
      else log?.info({ driver: this.name }, 'opcua reconnected');
    });
    client.on('connection_reestablished', () => {
      this.connected = true;
      this.success();
    });
    let broken = false;
    const ended = new Promise<void>((resolve) => {
      this.rebuild = () => {
        broken = true;
        resolve();
      };
    });
    await client.connect(c.endpoint);
    if (this.stopping) return;
    this.connected = true;
    retryForever(client, c.maxBackoff);
    const session = (await client.createSession(userIdentity(c.identity))) as unknown as UaSession;
    this.session = session;
    session.on('session_closed', () => {
      if (!this.stopping) this.failure('session', 'the server closed the session');
    });
    const unresolved = await resolveNodes(session, this.nodes);
    for (const [n, why] of unresolved) this.tracker.count('node', `node "${n.name}": ${why}`);
    const live = this.nodes.filter((n) => n.nodeId !== undefined);
    if (this.stopping) return;
    if (c.mode === 'subscription') {
      this.subscription = await UaSubscription.create(session, c, live, {
        changed: (n, dv) => this.reading(n, dv),
        heard: () => this.success(),
        silent: () => {
          this.failure('silent', 'the subscription went silent; reconnecting');
          this.rebuild?.();
        },
      });
      this.success();
      await ended;
    } else {
      this.success();
      while (!this.stopping && !broken) {
        const started = Date.now();
        try {
          for (const [n, dv] of await pollOnce(session, live, c.timeout)) this.reading(n, dv);
          this.success();
        } catch (err) {
          this.failure('read', (err as Error).message);
        }
        const wait = c.interval - (Date.now() - started);
        await Promise.race([this.sleeper.sleep(Math.max(0, wait)), ended]);
      }
    }
  }

  private async teardown(): Promise<void> {
    this.rebuild = undefined;
    this.connected = false;
    const client = this.client;
    const session = this.session;
    const sub = this.subscription;
    this.client = undefined;
    this.session = undefined;
    this.subscription = undefined;
    sub?.close();
    if (session) await untilDeadline(session.close(false), Date.now() + 1000);
    if (client) await untilDeadline(client.disconnect(), Date.now() + 2000);
    const certificates = this.certificates;
    this.certificates = undefined;
    if (certificates) await untilDeadline(certificates.dispose(), Date.now() + 1000);
  }

  private reading(n: NodeHandle, dv: DataValue): void {
    const now = Date.now();
    const { payload, deviceTs, value } = mapDataValue(dv, n.cfg.unit);
    n.last = { payload, stale: false };
    if (dv.value) n.variant = { dataType: dv.value.dataType, arrayType: dv.value.arrayType };
    this.tracker.lastReading = { topic: n.topic, value, ts: now };
    this.push({ source: this.source, topic: n.topic, kind: 'reading', ts: now, payload, ...(deviceTs ? { deviceTs } : {}) });
  }

  private success(): void {
    const prev = this.tracker.success();
    if (prev !== undefined) this.stateChanged(prev);
  }

  private failure(reason: string, message: string): void {
    if (this.stopping) return;
    const prev = this.tracker.failure(reason, message);
    if (prev !== undefined) this.stateChanged(prev);
  }

  private stateChanged(previous: DriverHealth['devices'][number]['state']): void {
    const t = this.tracker;
    const msg = `opcua server ${t.state}`;
    if (t.state === 'up') this.ctx?.logger.info({ driver: this.name, endpoint: t.device }, msg);
    else this.ctx?.logger.warn({ driver: this.name, endpoint: t.device, error: t.lastError }, msg);
    this.push(statusEvent(this, t, previous));
    if (t.state !== 'down') return;
    const now = Date.now();
    for (const n of this.nodes) {
      if (!n.last || n.last.stale) continue;
      n.last.stale = true;
      this.push({ source: this.source, topic: n.topic, kind: 'reading', ts: now, payload: { ...n.last.payload, quality: 'stale' } });
    }
  }

  private push(e: EventInput): void {
    if (this.pending.length >= MAX_PENDING) {
      this.tracker.count('overflow', 'readings dropped: the ring log is behind');
      return;
    }
    this.pending.push(e);
    if (!this.flushing) {
      this.flushing = true;
      setImmediate(() => void this.flush());
    }
  }

  private async flush(): Promise<void> {
    while (this.pending.length > 0 && this.ctx) {
      const batch = this.pending;
      this.pending = [];
      try {
        await this.ctx.emit(batch);
      } catch (err) {
        this.tracker.count('emit', `readings not stored: ${(err as Error).message}`);
      }
    }
    this.flushing = false;
  }
}
