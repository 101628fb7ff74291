/**
 * The broker and credential attacks of a red-team review, replayed against the compiled gateway
 * with real clients (mqtt.js, the raw client, fetch); each must now fail, be counted and leave
 * everyone else unaffected: subscribe-ACL wildcard escapes, parallel password guessing (MQTT, HTTP
 * ingest tokens, HTTP basic auth), offline session takeover (also across a restart), retained
 * floods and large retained sets, subscription floods, idle WebSocket sockets before the upgrade,
 * QoS 2 re-sends, huge client ids and wills outside the ACL.
 */
import { request as httpRequest } from 'node:http';
import { networkInterfaces } from 'node:os';
import { dirname } from 'node:path';
import { connect as netConnect, type Socket } from 'node:net';
import mqtt from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/auth/password.js';
import { freePort } from '../helpers/peers.js';
import { waitFor } from '../helpers/gateway.js';
import { type ChildGateway, startChildGateway } from './child-gateway.js';
import { connectPacket, type RawClient, rawConnect } from './raw-client.js';
import { record } from './report.js';

const MAX_CONNECTIONS = 40;
const MAX_AUTH_FAILURES = 6;
const MAX_SUBSCRIPTIONS = 20;
const MAX_RETAINED = 60;
const MAX_CLIENT_ID = 64;
const BIG = 256 * 1024 - 1024;

/** A non-loopback address of this machine (HTTP basic auth exempts loopback clients). */
const lanAddress = Object.values(networkInterfaces())
  .flat()
  .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;

/** A POST from a chosen loopback source address (fetch cannot bind one); resolves the status. */
function postFrom(localAddress: string, port: number, path: string, headers: Record<string, string>, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method: 'POST', headers, localAddress }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function connack(c: RawClient, ms = 10_000): Promise<number> {
  return ((await c.next('connack', ms)) as { returnCode: number }).returnCode;
}

async function rawLogin(port: number, id: string, user?: string, pw?: string, extra: Partial<mqttPacket.IConnectPacket> = {}) {
  const c = await rawConnect(port);
  c.send({ ...connectPacket(id, user, pw), ...extra });
  return { c, code: await connack(c) };
}

describe('broker and credential attacks', () => {
  let gw: ChildGateway;
  let wsPort: number;
  let mqttPort: number;
  let cases = 0;
  const url = () => `mqtt://127.0.0.1:${mqttPort}`;
  const rejected = async (reason: string) => (await gw.status()).ingest.rejectedByReason[reason] ?? 0;
  let config: Record<string, unknown>;

  beforeAll(async () => {
    const [hPlus, hStatus, hS1, hS2, hOps, hTok, hHttp] = await Promise.all(
      ['pw-plus', 'pw-status', 'pw-s1', 'pw-s2', 'pw-ops', 'token-s1', 'pw-http'].map((p) => hashPassword(p)),
    );
    wsPort = await freePort();
    mqttPort = await freePort();
    config = {
      broker: {
        listeners: [
          { host: '127.0.0.1', port: mqttPort },
          { host: '127.0.0.1', port: wsPort, ws: true },
        ],
        allowAnonymous: false,
        maxConnections: MAX_CONNECTIONS,
        maxAuthFailuresPerMinute: MAX_AUTH_FAILURES,
        maxSubscriptionsPerClient: MAX_SUBSCRIPTIONS,
        maxRetainedMessages: MAX_RETAINED,
        maxRetainedBytes: '13MiB',
        maxClientIdLength: MAX_CLIENT_ID,
        users: [
          { username: 'plus', passwordHash: hPlus, subscribe: ['+'] },
          { username: 'status', passwordHash: hStatus, subscribe: ['status/+'] },
          { username: 's1', passwordHash: hS1, publish: ['sensors/s1/#'], subscribe: ['cmd/s1/#'], tokenHash: hTok },
          { username: 's2', passwordHash: hS2, publish: ['sensors/s2/#'], subscribe: ['cmd/#'] },
          { username: 'ops', passwordHash: hOps, publish: ['#'], subscribe: ['#'] },
        ],
      },
      ...(lanAddress ? { http: { host: '0.0.0.0', auth: { username: 'tech', passwordHash: hHttp } } } : {}),
    };
    gw = await startChildGateway(config);
  });

  afterAll(async () => {
    record('security-mqtt', { cases, peakRssKb: gw?.peakRssKb });
    await gw?.stop();
    gw?.cleanup();
  });

  it('grants a subscription only when the ACL covers every topic it can match', async () => {
    const suback = async (user: string, filters: string[]) => {
      const { c, code } = await rawLogin(mqttPort, `acl-${user}`, user, `pw-${user}`);
      expect(code).toBe(0);
      c.send({ cmd: 'subscribe', messageId: 1, subscriptions: filters.map((topic) => ({ topic, qos: 0 as const })) });
      const granted = ((await c.next('suback')) as { granted: number[] }).granted;
      return { c, granted };
    };
    const plus = await suback('plus', ['#', '+/#', '+/+', 'a/b', '$SYS/#', '+']);
    expect(plus.granted).toEqual([128, 128, 128, 128, 128, 0]);
    const status = await suback('status', ['status/#', 'status', 'status/+', 'status/pump']);
    expect(status.granted).toEqual([128, 128, 0, 0]);
    status.c.sock.destroy();
    // Nothing leaks through what was refused: the user of `+` gets one-level topics only.
    const ops = await mqtt.connectAsync(url(), { username: 'ops', password: 'pw-ops', reconnectPeriod: 0 });
    await ops.publishAsync('deep/secret/x', 'leak?', { qos: 1 });
    await ops.publishAsync('top', 'fine', { qos: 1 });
    await ops.endAsync();
    await waitFor(() => plus.c.packets.some((p) => p.cmd === 'publish'), 5000, 'the allowed message');
    await new Promise((r) => setTimeout(r, 200));
    expect(plus.c.packets.filter((p) => p.cmd === 'publish').map((p) => (p as { topic: string }).topic)).toEqual(['top']);
    plus.c.sock.destroy();
    cases += 10;
    expect(await rejected('acl_subscribe')).toBe(7);
  });

  it('reserves a login attempt before the password check: parallel guesses get exactly the limit', async () => {
    const tries = await Promise.all(
      Array.from({ length: 30 }, async (_, i) => {
        const c = await rawConnect(mqttPort, { localAddress: '127.0.0.5' });
        c.send(connectPacket(`par-${i}`, 's1', `guess-${i}`));
        const code = await connack(c);
        c.sock.destroy();
        return code;
      }),
    );
    cases += tries.length;
    expect(tries.filter((c) => c === 4)).toHaveLength(MAX_AUTH_FAILURES); // checked, wrong
    expect(tries.filter((c) => c === 5)).toHaveLength(30 - MAX_AUTH_FAILURES); // refused unchecked
    // HTTP ingest tokens share the limits: parallel wrong tokens from one address.
    const statuses = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        postFrom('127.0.0.6', gw.httpPort, '/api/events', { authorization: `Bearer wrong-${i}`, 'content-type': 'application/json' }, '{"topic":"sensors/s1/t","payload":1}'),
      ),
    );
    cases += statuses.length;
    expect(statuses.filter((s) => s === 401)).toHaveLength(MAX_AUTH_FAILURES);
    expect(statuses.filter((s) => s === 429)).toHaveLength(20 - MAX_AUTH_FAILURES);
  });

  it.skipIf(!lanAddress)('limits, counts and logs HTTP basic auth failures', async () => {
    const base = `http://${lanAddress}:${gw.httpPort}`;
    const auth = (pw: string) => `Basic ${Buffer.from(`tech:${pw}`).toString('base64')}`;
    const before = await rejected('auth_failed');
    const statuses = await Promise.all(
      Array.from({ length: 20 }, (_, i) => fetch(`${base}/api/status`, { headers: { authorization: auth(`nope-${i}`) } }).then((r) => r.status)),
    );
    cases += statuses.length;
    expect(statuses.filter((s) => s === 401)).toHaveLength(MAX_AUTH_FAILURES);
    expect(statuses.filter((s) => s === 429)).toHaveLength(20 - MAX_AUTH_FAILURES);
    expect((await rejected('auth_failed')) - before).toBe(MAX_AUTH_FAILURES);
    await waitFor(() => gw.logs.some((l) => /HTTP login refused/.test(l.msg) && l.username === 'tech'), 5000, 'the log line');
  });

  it('refuses another user a persistent session, while its owner is offline and after a restart', async () => {
    const owner = await mqtt.connectAsync(url(), { clientId: 'valve-7', clean: false, username: 's1', password: 'pw-s1', reconnectPeriod: 0 });
    await owner.subscribeAsync('cmd/s1/#', { qos: 1 });
    await owner.endAsync();
    const ops = await mqtt.connectAsync(url(), { username: 'ops', password: 'pw-ops', reconnectPeriod: 0 });
    await ops.publishAsync('cmd/s1/open', 'open-valve-7', { qos: 1 });
    await ops.endAsync();
    // The attacker (another valid user) asks for the session, then tries to wipe it.
    const resume = await rawLogin(mqttPort, 'valve-7', 's2', 'pw-s2', { clean: false });
    const wipe = await rawLogin(mqttPort, 'valve-7', 's2', 'pw-s2', { clean: true });
    expect([resume.code, wipe.code]).toEqual([5, 5]);
    expect(resume.c.packets.some((p) => p.cmd === 'publish')).toBe(false);
    resume.c.sock.destroy();
    wipe.c.sock.destroy();
    cases += 2;
    // The owner still gets its queued command.
    const got: string[] = [];
    const back = mqtt.connect(url(), { clientId: 'valve-7', clean: false, username: 's1', password: 'pw-s1', reconnectPeriod: 0 });
    back.on('message', (_t, p) => got.push(p.toString()));
    await waitFor(() => got.includes('open-valve-7'), 5000, 'the queued command');
    await back.endAsync();
    expect(await rejected('session_owned')).toBe(2);
    expect(gw.logs.some((l) => /belongs to another user/.test(l.msg) && l.client === 'valve-7')).toBe(true);
  });

  it('keeps retained messages within their bounds, counted, and sends a large retained set without dropping the subscriber', async () => {
    const ops = await mqtt.connectAsync(url(), { username: 'ops', password: 'pw-ops', reconnectPeriod: 0 });
    // 52 large retained messages (12.95 MiB, under 13 MiB), then small ones past the count bound.
    const big = 'r'.repeat(BIG);
    for (let i = 0; i < 52; i++) await ops.publishAsync(`retained/big/${i}`, big, { qos: 1, retain: true });
    await ops.publishAsync('retained/big/over', big, { qos: 1, retain: true }); // past the bytes bound
    for (let i = 0; i < 10; i++) await ops.publishAsync(`retained/small/${i}`, `s${i}`, { qos: 1, retain: true });
    cases += 63;
    expect(await rejected('retained_full')).toBe(1 + 10 - (MAX_RETAINED - 52));
    // Replacing and clearing are always allowed.
    await ops.publishAsync('retained/big/0', 'small now', { qos: 1, retain: true });
    await ops.publishAsync('retained/big/1', '', { qos: 1, retain: true });
    await ops.endAsync();

    const sub = await mqtt.connectAsync(url(), { username: 'ops', password: 'pw-ops', reconnectPeriod: 0 });
    const topics = new Set<string>();
    let bytes = 0;
    sub.on('message', (t, p) => {
      topics.add(t);
      bytes += p.length;
    });
    let closed = false;
    sub.on('close', () => {
      closed = true;
    });
    await sub.subscribeAsync('retained/#', { qos: 1 });
    await waitFor(() => topics.size >= MAX_RETAINED - 1, 30_000, 'every retained message');
    expect(topics.has('retained/big/over')).toBe(false);
    expect(topics.has('retained/big/1')).toBe(false);
    expect(closed).toBe(false);
    expect(await rejected('slow_consumer')).toBe(0);
    await sub.endAsync();
    record('retained', { retainedDelivered: topics.size, retainedMiB: Math.round(bytes / 1048576) });
    expect(gw.logs.some((l) => /retained message not kept/.test(l.msg))).toBe(true);
  });

  it('bounds subscriptions per client, also within one SUBSCRIBE and for a persistent session', async () => {
    for (const clean of [true, false]) {
      const { c, code } = await rawLogin(mqttPort, `subflood-${clean}`, 'ops', 'pw-ops', { clean });
      expect(code).toBe(0);
      c.send({
        cmd: 'subscribe',
        messageId: 1,
        subscriptions: Array.from({ length: MAX_SUBSCRIPTIONS + 5 }, (_, i) => ({ topic: `flood/${i}`, qos: 0 as const })),
      });
      const granted = ((await c.next('suback')) as { granted: number[] }).granted;
      expect(granted.filter((g) => g === 0)).toHaveLength(MAX_SUBSCRIPTIONS);
      expect(granted.slice(MAX_SUBSCRIPTIONS)).toEqual(Array(5).fill(128));
      // Re-subscribing to one it has is fine; one more is not.
      c.send({ cmd: 'subscribe', messageId: 2, subscriptions: [{ topic: 'flood/0', qos: 1 }, { topic: 'flood/new', qos: 0 }] });
      expect(((await c.next('suback')) as { granted: number[] }).granted).toEqual([1, 128]);
      c.sock.destroy();
      cases += MAX_SUBSCRIPTIONS + 7;
    }
    expect(await rejected('max_subscriptions')).toBe(12);
  });

  it('stores a QoS 2 publish once however often it is re-sent before PUBREL, also across a persistent session\'s reconnect', async () => {
    const before = (await gw.status()).ingest.received;
    const { c } = await rawLogin(mqttPort, 'q2-sender', 's1', 'pw-s1');
    const publish = (dup: boolean) => ({
      cmd: 'publish' as const,
      topic: 'sensors/s1/q2',
      payload: Buffer.from('{"v":2}'),
      qos: 2 as const,
      messageId: 42,
      retain: false,
      dup,
    });
    // Two copies in one TCP segment, then a third after the PUBREC.
    c.sock.write(Buffer.concat([mqttPacket.generate(publish(false)), mqttPacket.generate(publish(true))]));
    await c.next('pubrec');
    c.send(publish(true));
    await c.next('pubrec');
    c.send({ cmd: 'pubrel', messageId: 42 });
    await c.next('pubcomp');
    c.sock.destroy();
    // A persistent session: the first copy before a reconnect, the second after it (no PUBREL between).
    const first = await rawLogin(mqttPort, 'q2-resumer', 's1', 'pw-s1', { clean: false });
    first.c.send({ ...publish(false), messageId: 43 });
    await first.c.next('pubrec');
    first.c.sock.destroy();
    await new Promise((r) => setTimeout(r, 200));
    const again = await rawLogin(mqttPort, 'q2-resumer', 's1', 'pw-s1', { clean: false });
    again.c.send({ ...publish(true), messageId: 43 });
    await again.c.next('pubrec');
    again.c.send({ cmd: 'pubrel', messageId: 43 });
    await again.c.next('pubcomp');
    again.c.sock.destroy();
    cases += 5;
    await new Promise((r) => setTimeout(r, 300));
    expect((await gw.status()).ingest.received - before).toBe(2);
  });

  it('refuses client ids past broker.maxClientIdLength and wills outside the ACL', async () => {
    for (const [id, expected] of [
      ['x'.repeat(23), 0],
      ['x'.repeat(MAX_CLIENT_ID), 0],
      ['x'.repeat(MAX_CLIENT_ID + 1), 2],
      ['é'.repeat(MAX_CLIENT_ID / 2 + 1), 2], // counted in bytes
      ['x'.repeat(60_000), 2],
    ] as const) {
      const { c, code } = await rawLogin(mqttPort, id, 's1', 'pw-s1');
      expect(code, `${id.length} characters`).toBe(expected);
      c.sock.destroy();
    }
    const will = (topic: string) => ({ will: { topic, payload: Buffer.from('x'), qos: 0 as const, retain: false } });
    const refusedWills = [];
    for (const topic of ['cmd/s2/open', '$SYS/x', 'sensors/s2/forged']) {
      const { c, code } = await rawLogin(mqttPort, `will-${refusedWills.length}`, 's1', 'pw-s1', will(topic));
      refusedWills.push(code);
      c.sock.destroy();
    }
    expect(refusedWills).toEqual([5, 5, 5]);
    const ok = await rawLogin(mqttPort, 'will-ok', 's1', 'pw-s1', will('sensors/s1/lwt'));
    expect(ok.code).toBe(0);
    ok.c.sock.destroy();
    cases += 9;
    expect(await rejected('client_id_too_long')).toBe(3);
    expect(await rejected('acl_will')).toBe(3);
  });

  it('MQTT 5: answers refused publishes with reason codes, refuses takeovers and client ids as on 3.1.1, assigns empty ids', async () => {
    const v5Login = async (id: string, user?: string, pw?: string) => {
      const c = await rawConnect(mqttPort, { version: 5 });
      c.send({ ...connectPacket(id, user, pw), protocolVersion: 5 });
      return { c, connack: (await c.next('connack')) as mqttPacket.IConnackPacket };
    };
    const { c, connack } = await v5Login('v5-s1', 's1', 'pw-s1');
    expect(connack.reasonCode).toBe(0);
    const puback = async (messageId: number, topic: string, payload: Buffer) => {
      c.send({ cmd: 'publish', messageId, topic, payload, qos: 1, retain: false, dup: false });
      return ((await c.next('puback')) as mqttPacket.IPubackPacket).reasonCode ?? 0;
    };
    const before = { acl: await rejected('acl_publish'), oversize: await rejected('oversize') };
    expect(await puback(1, 'sensors/s2/forged', Buffer.from('1'))).toBe(0x87);
    expect(await puback(2, 'sensors/s1/big', Buffer.alloc(256 * 1024 + 1))).toBe(0x97);
    expect(await puback(3, 'sensors/s1/ok', Buffer.from('2'))).toBe(0);
    expect(c.isClosed()).toBe(false);
    expect(await rejected('acl_publish')).toBe(before.acl + 1);
    expect(await rejected('oversize')).toBe(before.oversize + 1);
    // Another user cannot take the connected client id over; a client id too long is refused.
    const taken = await v5Login('v5-s1', 's2', 'pw-s2');
    expect(taken.connack.reasonCode).toBe(0x85);
    const long = await v5Login('x'.repeat(MAX_CLIENT_ID + 1), 's1', 'pw-s1');
    expect(long.connack.reasonCode).toBe(0x85);
    // An empty client id gets a unique one.
    const a = await v5Login('', 's1', 'pw-s1');
    const b = await v5Login('', 's1', 'pw-s1');
    const ids = [a, b].map((x) => x.connack.properties?.assignedClientIdentifier);
    expect(ids[0]).toBeTruthy();
    expect(ids[0]).not.toBe(ids[1]);
    for (const x of [c, taken.c, long.c, a.c, b.c]) x.sock.destroy();
    cases += 7;
  });

  it('counts sockets on the WebSocket listener before the upgrade, and closes idle ones', async () => {
    const idle: Socket[] = [];
    for (let i = 0; i < MAX_CONNECTIONS + 10; i++) {
      const s = netConnect(wsPort, '127.0.0.1');
      s.on('error', () => {});
      idle.push(s);
    }
    const closed = idle.map((s) => new Promise<void>((r) => s.once('close', () => r())));
    await new Promise((r) => setTimeout(r, 500));
    cases += idle.length;
    // The cap holds: a real client is refused while the idle sockets hold every slot...
    expect(await rejected('max_connections')).toBeGreaterThanOrEqual(10);
    const refused = await rawConnect(mqttPort).catch(() => null);
    if (refused) {
      refused.send(connectPacket('while-full', 's1', 'pw-s1'));
      const outcome = await Promise.race([
        refused.closed.then(() => 'closed'),
        refused.next('connack', 5000).then(() => 'connack', () => 'nothing'),
      ]);
      expect(outcome).toBe('closed');
      refused.sock.destroy();
    }
    // ...and the idle sockets are closed after the connect timeout, which frees the slots.
    const t0 = Date.now();
    const allClosed = await Promise.race([Promise.all(closed).then(() => true), new Promise((r) => setTimeout(() => r(false), 20_000))]);
    expect(allClosed, 'every idle socket closed').toBe(true);
    expect(Date.now() - t0).toBeLessThan(15_000);
    const c = await mqtt.connectAsync(url(), { username: 's1', password: 'pw-s1', reconnectPeriod: 0 });
    await c.endAsync();
  });

  it('keeps the owner of a persistent session across a restart', async () => {
    const root = dirname(gw.dataDir);
    await gw.stop();
    gw = await startChildGateway(config, { dataDir: root });
    const stolen = await rawLogin(mqttPort, 'valve-7', 's2', 'pw-s2', { clean: false });
    expect(stolen.code).toBe(5);
    stolen.c.sock.destroy();
    const owner = await rawLogin(mqttPort, 'valve-7', 's1', 'pw-s1', { clean: false });
    expect(owner.code).toBe(0);
    owner.c.sock.destroy();
    cases += 2;
  });
});
