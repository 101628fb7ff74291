/**
 * The local broker against a real MQTT client (mqtt.js): the PUBACK waits for the durable append,
 * users log in with scrypt hashes, ACLs refuse what they must and the refusals are counted.
 */
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { BufferFullError } from '../../buffer/types.js';
import { freePort } from '../../test/helpers/peers.js';
import type { EventInput } from '../core/event.js';
import { silentLogger } from '../core/log.js';
import { LocalBroker } from './index.js';
import { hashPassword, verifyPassword } from '../auth/password.js';
import { brokerSchema } from './schema.js';

const brokers: LocalBroker[] = [];
const clients: mqtt.MqttClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
  await Promise.all(brokers.splice(0).map((b) => b.stop()));
});

async function start(config: Record<string, unknown>, ingest: (e: EventInput[]) => Promise<unknown>) {
  const port = await freePort();
  const rejected: Record<string, number> = {};
  const broker = new LocalBroker(brokerSchema.parse({ listeners: [{ host: '127.0.0.1', port }], ...config }), {
    logger: silentLogger,
    ingest,
    countRejected: (reason, n = 1) => {
      rejected[reason] = (rejected[reason] ?? 0) + n;
    },
  });
  await broker.start();
  brokers.push(broker);
  return { port, rejected, broker };
}

async function connect(port: number, opts: mqtt.IClientOptions = {}) {
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, ...opts });
  clients.push(c);
  return c;
}

describe('password hashes', () => {
  it('verifies the right secret only', async () => {
    const h = await hashPassword('s3cret');
    expect(h).toMatch(/^scrypt\$16384\$8\$1\$/);
    expect(await verifyPassword('s3cret', h)).toBe(true);
    expect(await verifyPassword('s3cret!', h)).toBe(false);
    expect(await verifyPassword('x', 'scrypt$1$1$1$a$b')).toBe(false);
  });
});

describe('LocalBroker', () => {
  it('sends the PUBACK only after the append resolved', async () => {
    let release!: () => void;
    const stored: EventInput[] = [];
    const { port } = await start({}, (events) => {
      stored.push(...events);
      return new Promise<void>((r) => {
        release = r;
      });
    });
    const c = await connect(port);
    let acked = false;
    const pub = c.publishAsync('sensors/a/temp', '{"value": 1.5}', { qos: 1 }).then(() => {
      acked = true;
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(stored).toHaveLength(1);
    // The body goes to the log as received; the payload is parsed only when read.
    expect(stored[0]).toMatchObject({ source: 'mqtt', topic: 'sensors/a/temp' });
    expect(stored[0].body?.toString()).toBe('{"value": 1.5}');
    expect(stored[0].payload).toEqual({ value: 1.5 });
    expect(acked).toBe(false);
    release();
    await pub;
    expect(acked).toBe(true);
  });

  it('holds the PUBACK while the log is full (onFull: reject) and sends it once there is room', async () => {
    let full = true;
    const { port } = await start({}, async () => {
      if (full) throw new BufferFullError();
    });
    const c = await connect(port);
    let acked = false;
    const pub = c.publishAsync('sensors/a', '1', { qos: 1 }).then(() => {
      acked = true;
    });
    await new Promise((r) => setTimeout(r, 600));
    expect(acked).toBe(false);
    full = false;
    await pub;
    expect(acked).toBe(true);
  });

  it('stops reading a QoS 0 publisher while the log is behind, and stores everything once it catches up', async () => {
    const stored: EventInput[] = [];
    const commits: Array<() => void> = [];
    let diskDown = true;
    const { port, rejected } = await start({}, (events) => {
      stored.push(...events);
      return diskDown ? new Promise<void>((r) => commits.push(r)) : Promise.resolve();
    });
    const c = await connect(port);
    const body = (i: number) => `{"i":${i},"pad":"${'x'.repeat(60_000)}"}`;
    const total = 120; // ~7 MB: past the 4 MiB the broker lets QoS 0 run ahead of the disk
    for (let i = 0; i < total; i++) c.publish('sensors/bulk', body(i), { qos: 0 });
    await new Promise((r) => setTimeout(r, 800));
    // Held: the rest waits in the sockets (TCP), not in the gateway's memory, and nothing is refused.
    const whileHeld = stored.length;
    expect(whileHeld).toBeGreaterThan(50);
    expect(whileHeld).toBeLessThan(total);
    // Other clients are served meanwhile.
    const other = await connect(port);
    await other.subscribeAsync('sensors/#');
    await new Promise((r) => setTimeout(r, 300));
    expect(stored.length).toBe(whileHeld);
    diskDown = false;
    for (const commit of commits.splice(0)) commit();
    await expect.poll(() => stored.length, { timeout: 5000 }).toBe(total);
    expect(stored.map((e) => JSON.parse(e.body!.toString()).i)).toEqual([...Array(total).keys()]);
    expect(rejected).toEqual({});
  });

  it('only ingests topics matching broker.ingest', async () => {
    const stored: EventInput[] = [];
    const { port } = await start({ ingest: ['sensors/#'] }, async (e) => {
      stored.push(...e);
    });
    const c = await connect(port);
    await c.publishAsync('other/x', 'a', { qos: 1 });
    await c.publishAsync('sensors/x', 'b', { qos: 1 });
    expect(stored.map((e) => e.topic)).toEqual(['sensors/x']);
  });

  it('authenticates users and enforces their publish and subscribe ACLs', async () => {
    const stored: EventInput[] = [];
    const { port, rejected } = await start(
      {
        allowAnonymous: false,
        users: [
          {
            username: 's1',
            passwordHash: await hashPassword('pw1'),
            publish: ['sensors/s1/#'],
            subscribe: ['actuators/s1/#'],
          },
        ],
      },
      async (e) => {
        stored.push(...e);
      },
    );
    await expect(connect(port)).rejects.toThrow(/Not authorized/i);
    await expect(connect(port, { username: 's1', password: 'wrong' })).rejects.toThrow(/Bad username or password/i);
    expect(rejected).toMatchObject({ auth_anonymous: 1, auth_failed: 1 });

    const c = await connect(port, { username: 's1', password: 'pw1' });
    await c.publishAsync('sensors/s1/temp', '20', { qos: 1 });
    expect(stored.map((e) => e.topic)).toEqual(['sensors/s1/temp']);

    const granted = await c.subscribeAsync('actuators/s1/relay');
    expect(granted.map((g) => g.qos)).toEqual([0]);
    // SUBACK 0x80 for a filter outside the ACL; the client stays connected.
    await expect(c.subscribeAsync('#')).rejects.toThrow(/Subscribe error/);
    expect(rejected.acl_subscribe).toBe(1);

    const closed = new Promise<void>((r) => c.once('close', () => r()));
    c.publish('sensors/s2/temp', '99', { qos: 1 });
    await closed;
    expect(rejected.acl_publish).toBe(1);
    expect(stored).toHaveLength(1);
  });

  it('keeps for a persistent session only the filters it was granted (not one refused beside them)', async () => {
    const { port, rejected } = await start(
      {
        allowAnonymous: false,
        users: [
          { username: 'app', passwordHash: await hashPassword('pw'), subscribe: ['sensors/#'], publish: [] },
          { username: 'ops', passwordHash: await hashPassword('pw'), subscribe: ['#'], publish: ['#'] },
        ],
      },
      async () => {},
    );
    const session = { clientId: 'app-1', clean: false, username: 'app', password: 'pw' };
    const app = await connect(port, session);
    // One SUBSCRIBE: the first filter granted, the second refused (SUBACK 0x80).
    const codes = await app.subscribeAsync({ 'sensors/a': { qos: 1 }, 'secret/#': { qos: 1 } }).then(
      (g) => g.map((x) => x.qos),
      (err: { packet?: { granted?: number[] } }) => err.packet?.granted,
    );
    expect(codes).toEqual([1, 0x80]);
    expect(rejected.acl_subscribe).toBe(1);
    const ops = await connect(port, { username: 'ops', password: 'pw' });
    await ops.publishAsync('secret/while-connected', 'x', { qos: 1 });
    await app.endAsync();
    await ops.publishAsync('secret/while-away', 'x', { qos: 1 });
    await ops.publishAsync('sensors/a', 'kept', { qos: 1 });

    const got: string[] = [];
    const again = await connect(port, session);
    again.on('message', (topic) => got.push(topic));
    await expect.poll(() => got).toEqual(['sensors/a']);
    await new Promise((r) => setTimeout(r, 200)); // nothing else follows
    expect(got).toEqual(['sensors/a']);
  });

  it('rate-limits password guessing per address', async () => {
    const { port, rejected } = await start(
      {
        allowAnonymous: false,
        maxAuthFailuresPerMinute: 3,
        users: [{ username: 'u', passwordHash: await hashPassword('right') }],
      },
      async () => {},
    );
    for (let i = 0; i < 3; i++) await expect(connect(port, { username: 'u', password: `guess${i}` })).rejects.toThrow();
    await expect(connect(port, { username: 'u', password: 'right' })).rejects.toThrow(/Not authorized/i);
    expect(rejected.auth_rate_limited).toBe(1);
  });

  it('refuses anonymous clients by default on a non-loopback listener', () => {
    const cfg = brokerSchema.parse({ listeners: [{ host: '0.0.0.0', port: 1 }] });
    const b = new LocalBroker(cfg, { logger: silentLogger, ingest: async () => {}, countRejected() {} });
    expect((b as unknown as { allowAnonymous: boolean }).allowAnonymous).toBe(false);
  });
});
