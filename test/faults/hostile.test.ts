/**
 * Hostile clients against the gateway's broker: connection floods, slow-loris, a
 * subscriber that never reads, password guessing, ACL escapes and client-id takeover. A good
 * sensor publishes QoS 1 throughout; everything it had acknowledged must reach the cloud.
 */
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/auth/password.js';
import { waitFor } from '../helpers/gateway.js';
import { type ChildGateway, startChildGateway } from './child-gateway.js';
import { GoodPublisher, Upstream } from './oracle.js';
import { connectPacket, type RawClient, rawConnect } from './raw-client.js';
import { record } from './report.js';

const MAX_CONNECTIONS = 60;
const MAX_AUTH_FAILURES = 5;
const CONNECT_TIMEOUT_MS = 10_000; // aedes connectTimeout set by the broker

describe('hostile clients', () => {
  let upstream: Upstream;
  let gw: ChildGateway;
  let good: GoodPublisher;
  let cases = 0;
  const url = () => `mqtt://127.0.0.1:${gw.mqttPort}`;

  beforeAll(async () => {
    upstream = await Upstream.start();
    const [h1, h2, hTap] = await Promise.all([hashPassword('pw-s1'), hashPassword('pw-s2'), hashPassword('pw-tap')]);
    gw = await startChildGateway({
      broker: {
        allowAnonymous: false,
        maxConnections: MAX_CONNECTIONS,
        maxAuthFailuresPerMinute: MAX_AUTH_FAILURES,
        users: [
          { username: 's1', passwordHash: h1, publish: ['sensors/s1/#'] },
          { username: 's2', passwordHash: h2, publish: ['sensors/s2/#'] },
          { username: 'tap', passwordHash: hTap, subscribe: ['sensors/#'] },
        ],
      },
      uplinks: [{ name: 'cloud', type: 'mqtt', url: upstream.url }],
    });
    good = new GoodPublisher(url(), {
      prefix: 'hostile',
      topic: 'sensors/s1/temp',
      window: 5,
      ratePerSec: 200,
      username: 's1',
      password: 'pw-s1',
    });
    await good.start();
  });

  afterAll(async () => {
    await good?.stop().catch(() => {});
    const verdict = upstream && good ? upstream.verdict(good.acked) : undefined;
    if (verdict) record('hostile', { cases, ...verdict, missing: undefined, peakRssKb: gw?.peakRssKb });
    await gw?.stop();
    gw?.cleanup();
    await upstream?.stop();
  });

  it('enforces broker.maxConnections against a flood, and recovers when it ends', async () => {
    const flood: RawClient[] = [];
    for (let i = 0; i < MAX_CONNECTIONS * 3; i++) flood.push(await rawConnect(gw.mqttPort));
    cases += flood.length;
    await new Promise((r) => setTimeout(r, 500));
    const open = flood.filter((c) => !c.isClosed()).length;
    const status = await gw.status();
    expect(status.broker.clients).toBeLessThanOrEqual(MAX_CONNECTIONS);
    expect(open).toBeLessThanOrEqual(MAX_CONNECTIONS - 1); // the good sensor holds one
    expect(status.ingest.rejectedByReason.max_connections).toBeGreaterThanOrEqual(MAX_CONNECTIONS * 2);
    const ackedBefore = good.acked.size;
    await waitFor(() => good.acked.size > ackedBefore + 20, 10_000, 'the good sensor to go on being acknowledged');
    for (const c of flood) c.sock.destroy();
    await waitFor(async () => (await gw.status()).broker.clients <= 1, 10_000, 'the flood to be gone');
    const c = await mqtt.connectAsync(url(), { username: 's2', password: 'pw-s2', reconnectPeriod: 0 });
    await c.endAsync();
  });

  it('closes slow-loris connections (CONNECT never finished) after the connect timeout', async () => {
    const loris: RawClient[] = [];
    for (let i = 0; i < 20; i++) {
      const c = await rawConnect(gw.mqttPort);
      if (i % 2) c.sock.write(Buffer.from([0x10, 0x20, 0x00, 0x04, 0x4d])); // half a CONNECT, then nothing
      loris.push(c);
    }
    cases += loris.length;
    const t0 = Date.now();
    await Promise.all(loris.map((c) => c.closed));
    const ms = Date.now() - t0;
    expect(ms).toBeLessThan(CONNECT_TIMEOUT_MS + 5000);
    expect(loris.every((c) => c.isClosed())).toBe(true);
  });

  it('drops a subscriber that never reads, without losing or refusing intake', async () => {
    const tap = await rawConnect(gw.mqttPort);
    tap.send(connectPacket('tap-never-reads', 'tap', 'pw-tap'));
    expect(((await tap.next('connack')) as { returnCode: number }).returnCode).toBe(0);
    tap.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'sensors/#', qos: 1 }] });
    await tap.next('suback');
    tap.sock.pause(); // from now on it reads nothing: the gateway's writes to it back up
    cases++;

    // A burst of large publishes fills the tap's socket buffers quickly.
    const bulk = await mqtt.connectAsync(url(), { username: 's2', password: 'pw-s2', reconnectPeriod: 0 });
    const big = 'x'.repeat(32 * 1024);
    const bulkAcked: number[] = [];
    const started = Date.now();
    for (let i = 0; i < 400; i++) {
      await bulk.publishAsync('sensors/s2/blob', JSON.stringify({ i, big }), { qos: 1 });
      bulkAcked.push(i);
    }
    const bulkSeconds = (Date.now() - started) / 1000;
    const ackedBefore = good.acked.size;
    // The tap was dropped as a slow consumer once its backlog passed the bound, and intake never
    // waited for it: every bulk publish was acknowledged and the good sensor goes on.
    const status = await waitFor(
      async () => {
        const s = await gw.status();
        return (s.ingest.rejectedByReason.slow_consumer ?? 0) >= 1 ? s : undefined;
      },
      20_000,
      'the never-reading subscriber to be dropped',
    );
    expect(status.ingest.rejectedByReason.slow_consumer).toBe(1);
    await waitFor(() => good.acked.size > ackedBefore + 50, 15_000, 'intake to continue');
    expect(bulkAcked).toHaveLength(400);
    expect(gw.logs.some((l) => /slow consumer/.test(l.msg) && l.client === 'tap-never-reads')).toBe(true);
    await bulk.endAsync();
    tap.sock.destroy();
    record('slow-subscriber', { bulkPublishes: 400, bulkSeconds: Math.round(bulkSeconds * 10) / 10 });
  });

  it('bounds what it queues for a persistent subscriber that went away', async () => {
    const away = await mqtt.connectAsync(url(), { clientId: 'tap-away', clean: false, username: 'tap', password: 'pw-tap', reconnectPeriod: 0 });
    await away.subscribeAsync('sensors/#', { qos: 1 });
    await away.endAsync();
    cases++;
    const bulk = await mqtt.connectAsync(url(), { username: 's2', password: 'pw-s2', reconnectPeriod: 0 });
    const body = 'q'.repeat(1000);
    await Promise.all(Array.from({ length: 3000 }, (_, i) => bulk.publishAsync('sensors/s2/queued', JSON.stringify({ i, body }), { qos: 1 })));
    await bulk.endAsync();
    // Everything was stored and acknowledged; only the offline session's copies are capped.
    const status = await gw.status();
    expect(status.ingest.rejectedByReason.session_queue_full).toBeGreaterThanOrEqual(2000);
    // Back online, the session gets what was queued for it: the cap's worth, not everything.
    let received = 0;
    // The listener goes on before the CONNACK: the queue arrives right behind it.
    const back = mqtt.connect(url(), { clientId: 'tap-away', clean: false, username: 'tap', password: 'pw-tap', reconnectPeriod: 0 });
    back.on('message', () => {
      received++;
    });
    let connacks = 0;
    let closes = 0;
    back.on('connect', () => connacks++);
    back.on('close', () => closes++);
    await waitFor(() => received >= 1000, 15_000, 'the queued messages').catch(async (err) => {
      const s = await gw.status();
      throw new Error(
        `${err.message}: received ${received}, connacks ${connacks}, closes ${closes}, rejected ${JSON.stringify(s.ingest.rejectedByReason)}, log ${JSON.stringify(gw.logs.filter((l) => l.client === 'tap-away').slice(-5))}`,
      );
    });
    // Resuming while live messages flow did not cost the client its connection (aedes used to
    // close it: "no such packet"), and the queue-full drops were logged.
    expect(closes).toBe(0);
    await back.endAsync();
    expect(gw.logs.some((l) => /queue is full/.test(l.msg) && l.client === 'tap-away')).toBe(true);
  });

  it('rate-limits password guessing per address, logs it, and lets other addresses in', async () => {
    const results: number[] = [];
    for (let i = 0; i < 30; i++) {
      const c = await rawConnect(gw.mqttPort, { localAddress: '127.0.0.2' });
      c.send(connectPacket(`guess-${i}`, 's1', `guess-${i}`));
      const ack = (await c.next('connack')) as { returnCode: number };
      results.push(ack.returnCode);
      c.sock.destroy();
    }
    cases += results.length;
    expect(results.slice(0, MAX_AUTH_FAILURES)).toEqual(Array(MAX_AUTH_FAILURES).fill(4)); // bad user name or password
    expect(results.slice(MAX_AUTH_FAILURES)).toEqual(Array(30 - MAX_AUTH_FAILURES).fill(5)); // not authorized: rate limited
    // Even the right password is refused from that address for now...
    const right = await rawConnect(gw.mqttPort, { localAddress: '127.0.0.2' });
    right.send(connectPacket('right-pw', 's1', 'pw-s1'));
    expect(((await right.next('connack')) as { returnCode: number }).returnCode).toBe(5);
    right.sock.destroy();
    // ...but another address logs in.
    const other = await rawConnect(gw.mqttPort, { localAddress: '127.0.0.3' });
    other.send(connectPacket('other-host', 's2', 'pw-s2'));
    expect(((await other.next('connack')) as { returnCode: number }).returnCode).toBe(0);
    other.sock.destroy();
    const status = await gw.status();
    expect(status.ingest.rejectedByReason.auth_failed).toBe(MAX_AUTH_FAILURES);
    expect(status.ingest.rejectedByReason.auth_rate_limited).toBeGreaterThanOrEqual(26);
    await waitFor(
      () => gw.logs.some((l) => l.level === 40 && /too many failed logins/.test(l.msg) && l.address === '127.0.0.2'),
      5000,
      'the log line',
    );
    expect(gw.logs.some((l) => /bad username or password/.test(l.msg) && l.username === 's1')).toBe(true);
  });

  it('refuses ACL escapes: another sensor’s topics, fleet topics, # and $SYS subscriptions, anonymous logins', async () => {
    const before = upstream.events.length;
    const escapes = ['sensors/s2/temp', 'sluice/gw-faults/cmd', 'sluice/gw-faults/state', 'other/topic'];
    for (const topic of escapes) {
      const c = await rawConnect(gw.mqttPort);
      c.send(connectPacket(`esc-${topic}`, 's1', 'pw-s1'));
      await c.next('connack');
      c.send({
        cmd: 'publish',
        topic,
        payload: Buffer.from('{"k":"escape"}'),
        qos: 1,
        messageId: 7,
        retain: false,
        dup: false,
      });
      // Refused: the connection is closed without a PUBACK.
      expect(await c.closed).toBeTruthy();
      expect(c.packets.some((p) => p.cmd === 'puback')).toBe(false);
    }
    const sub = await rawConnect(gw.mqttPort);
    sub.send(connectPacket('esc-sub', 's1', 'pw-s1'));
    await sub.next('connack');
    sub.send({
      cmd: 'subscribe',
      messageId: 2,
      subscriptions: [
        { topic: '#', qos: 1 },
        { topic: '$SYS/#', qos: 0 },
        { topic: 'sensors/s2/+', qos: 0 },
      ],
    });
    const suback = (await sub.next('suback')) as { granted: number[] };
    expect(suback.granted).toEqual([128, 128, 128]);
    sub.sock.destroy();

    const anon = await rawConnect(gw.mqttPort);
    anon.send(connectPacket('anon'));
    expect(((await anon.next('connack')) as { returnCode: number }).returnCode).toBe(5);
    anon.sock.destroy();
    cases += escapes.length + 4;

    const status = await gw.status();
    expect(status.ingest.rejectedByReason.acl_publish).toBeGreaterThanOrEqual(escapes.length);
    expect(status.ingest.rejectedByReason.acl_subscribe).toBeGreaterThanOrEqual(3);
    expect(status.ingest.rejectedByReason.auth_anonymous).toBeGreaterThanOrEqual(1);
    await new Promise((r) => setTimeout(r, 500));
    expect(upstream.events.slice(before).filter((e) => (e.payload as { k?: string })?.k === 'escape')).toEqual([]);
  });

  it('does not let one user take over another user’s client id', async () => {
    const victim = await mqtt.connectAsync(url(), {
      clientId: 'sensor-s2',
      username: 's2',
      password: 'pw-s2',
      reconnectPeriod: 0,
    });
    let victimClosed = false;
    victim.on('close', () => {
      victimClosed = true;
    });
    const thief = await rawConnect(gw.mqttPort);
    thief.send(connectPacket('sensor-s2', 's1', 'pw-s1'));
    const ack = (await thief.next('connack')) as { returnCode: number };
    cases++;
    expect(ack.returnCode).not.toBe(0);
    await new Promise((r) => setTimeout(r, 300));
    expect(victimClosed).toBe(false);
    thief.sock.destroy();
    await victim.endAsync();
  });

  it('kept every acknowledged message of the good sensor through all of it', async () => {
    await good.stop();
    await waitFor(() => upstream.verdict(good.acked).lost === 0, 30_000, 'every acknowledged message upstream').catch(
      () => {},
    );
    const v = upstream.verdict(good.acked);
    expect(v.acknowledged).toBeGreaterThan(100);
    expect(v.lost, `missing ${v.missing.join(', ')}`).toBe(0);
    expect(v.outOfOrder).toBe(0);
    expect(await gw.healthz()).toBe(200);
  });
});
