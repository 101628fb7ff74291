/**
 * Local broker security: a TLS listener (certificates from a private test CA;
 * optional client certificates mapped to users by `certCN`) and a WebSocket listener (mqtt.js over
 * ws://), all behind the same logins and ACLs as plain TCP. A certificate from another CA, or
 * with an unmapped name, logs nobody in.
 */
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/auth/password.js';
import { type CertAuthority, type CertFiles, certAuthority } from '../helpers/certs.js';
import { waitFor } from '../helpers/gateway.js';
import { freePort } from '../helpers/peers.js';
import { type ChildGateway, startChildGateway } from './child-gateway.js';
import { Upstream } from './oracle.js';
import { connectPacket, rawConnect } from './raw-client.js';
import { record } from './report.js';

/** The QoS granted per filter; mqtt.js rejects a SUBACK with a refusal, so read it off the error. */
async function grantedQos(client: mqtt.MqttClient, filters: string[]): Promise<number[]> {
  return client.subscribeAsync(filters).then(
    (g) => g.map((x) => x.qos),
    (err: { packet?: { granted?: number[] } }) => err.packet?.granted ?? [],
  );
}

describe('TLS and WebSocket listeners', () => {
  let upstream: Upstream;
  let gw: ChildGateway;
  let tlsPort: number;
  let wsPort: number;
  let cases = 0;
  let acknowledged = 0;
  let delivered = 0;
  // A CA with its server certificate and client certificates, and a rogue CA.
  let pki: CertAuthority;
  let rogue: CertAuthority;
  let sensor: CertFiles; // maps to s2
  let stranger: CertFiles; // an unmapped name
  let forged: CertFiles; // the right name from the wrong CA
  const ca = () => pki.cert;
  const tlsUrl = () => `mqtts://127.0.0.1:${tlsPort}`;

  beforeAll(async () => {
    pki = certAuthority('ca');
    rogue = certAuthority('rogue-ca');
    const server = pki.server();
    sensor = pki.client('sensor-tls');
    stranger = pki.client('stranger');
    forged = rogue.client('sensor-tls');
    upstream = await Upstream.start();
    tlsPort = await freePort();
    wsPort = await freePort();
    const mqttPort = await freePort();
    const [h1, h2] = await Promise.all([hashPassword('pw-s1'), hashPassword('pw-s2')]);
    gw = await startChildGateway({
      broker: {
        allowAnonymous: false,
        listeners: [
          { host: '127.0.0.1', port: mqttPort },
          { host: '127.0.0.1', port: tlsPort, tls: { cert: server.certPath, key: server.keyPath, ca: pki.certPath, requestCert: true } },
          { host: '127.0.0.1', port: wsPort, ws: true },
        ],
        users: [
          { username: 's1', passwordHash: h1, publish: ['sensors/s1/#'] },
          { username: 's2', passwordHash: h2, publish: ['sensors/s2/#'], certCN: 'sensor-tls' },
        ],
      },
      uplinks: [{ name: 'cloud', type: 'mqtt', url: upstream.url }],
    });
  });

  afterAll(async () => {
    record('tls-ws', { cases, acknowledged, delivered, lost: acknowledged - delivered, peakRssKb: gw?.peakRssKb });
    await gw?.stop();
    gw?.cleanup();
    await upstream?.stop();
    pki?.cleanup();
    rogue?.cleanup();
  });

  /** Connects; resolves the client, or the CONNACK refusal / transport error as a string. */
  async function attempt(url: string, opts: mqtt.IClientOptions): Promise<mqtt.MqttClient | string> {
    cases++;
    try {
      const connecting = mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts });
      const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no CONNACK within 8 s')), 8000));
      return await Promise.race([connecting, timeout]);
    } catch (err) {
      const e = err as { code?: number | string; message: string };
      return typeof e.code === 'number' ? `connack ${e.code}` : e.message;
    }
  }

  async function publishKept(client: mqtt.MqttClient, topic: string, k: string): Promise<void> {
    await client.publishAsync(topic, JSON.stringify({ k }), { qos: 1 });
    acknowledged++;
    await waitFor(() => upstream.deliveredKeys().has(k), 10_000, `${k} upstream`);
    delivered++;
  }

  it('TLS with a password: the server certificate verifies, the login and ACL apply', async () => {
    const c = await attempt(tlsUrl(), { ca: ca(), username: 's1', password: 'pw-s1', rejectUnauthorized: true });
    expect(typeof c).not.toBe('string');
    const client = c as mqtt.MqttClient;
    await publishKept(client, 'sensors/s1/temp', 'tls-pw');
    expect(await grantedQos(client, ['#'])).toEqual([128]);
    await client.endAsync();
    expect(await attempt(tlsUrl(), { ca: ca(), username: 's1', password: 'wrong' })).toBe('connack 4');
    expect(await attempt(tlsUrl(), { ca: ca() })).toBe('connack 5'); // anonymous
  });

  it('a client certificate from the CA logs in as the user its CN maps to, under that user’s ACL', async () => {
    const c = await attempt(tlsUrl(), { ca: ca(), cert: sensor.cert, key: sensor.key });
    expect(typeof c, String(c)).not.toBe('string');
    const client = c as mqtt.MqttClient;
    await publishKept(client, 'sensors/s2/temp', 'tls-cert');
    // Outside the mapped user's ACL: refused, the connection closed, nothing stored.
    const closed = new Promise<void>((r) => client.once('close', () => r()));
    client.publish('sensors/s1/temp', JSON.stringify({ k: 'tls-escape' }), { qos: 1 });
    await closed;
    client.end(true);
    await new Promise((r) => setTimeout(r, 300));
    expect(upstream.deliveredKeys().has('tls-escape')).toBe(false);
  });

  it('a certificate with an unmapped CN, or the right CN from another CA, logs nobody in', async () => {
    const unmapped = await attempt(tlsUrl(), { ca: ca(), cert: stranger.cert, key: stranger.key });
    expect(unmapped).toBe('connack 5');
    const wrongCa = await attempt(tlsUrl(), { ca: ca(), cert: forged.cert, key: forged.key });
    expect(wrongCa).toBe('connack 5');
    // A forged certificate plus a valid password is just a password login (as s1, not s2).
    const both = (await attempt(tlsUrl(), {
      ca: ca(),
      cert: forged.cert,
      key: forged.key,
      username: 's1',
      password: 'pw-s1',
    })) as mqtt.MqttClient;
    await publishKept(both, 'sensors/s1/temp', 'tls-forged-pw');
    await both.endAsync();
  });

  it('plain MQTT on the TLS port gets nowhere', async () => {
    cases++;
    const c = await rawConnect(tlsPort);
    c.send(connectPacket('plain-on-tls', 's1', 'pw-s1'));
    await c.closed;
    expect(c.packets).toEqual([]); // no CONNACK: the handshake failed and the socket was closed
  });

  it('WebSocket: mqtt.js over ws:// with the same logins and ACLs', async () => {
    const wsUrl = `ws://127.0.0.1:${wsPort}`;
    const c = await attempt(wsUrl, { username: 's1', password: 'pw-s1' });
    expect(typeof c, String(c)).not.toBe('string');
    const client = c as mqtt.MqttClient;
    await publishKept(client, 'sensors/s1/ws', 'ws-1');
    expect(await grantedQos(client, ['#', 'sensors/s2/#'])).toEqual([128, 128]);
    const closed = new Promise<void>((r) => client.once('close', () => r()));
    client.publish('sensors/s2/ws', JSON.stringify({ k: 'ws-escape' }), { qos: 1 });
    await closed;
    client.end(true);
    expect(await attempt(wsUrl, {})).toBe('connack 5');
    expect(await attempt(wsUrl, { username: 's2', password: 'nope' })).toBe('connack 4');
    await new Promise((r) => setTimeout(r, 300));
    expect(upstream.deliveredKeys().has('ws-escape')).toBe(false);
    const status = await gw.status();
    expect(status.ingest.rejectedByReason.acl_publish).toBeGreaterThanOrEqual(2);
    expect(await gw.healthz()).toBe(200);
  });
});

describe('anonymous WebSocket clients and web origins', () => {
  let gw: ChildGateway;
  let wsPort: number;

  beforeAll(async () => {
    wsPort = await freePort();
    // Loopback listeners only: anonymous clients are allowed by default.
    gw = await startChildGateway({
      broker: { listeners: [{ host: '127.0.0.1', port: await freePort() }, { host: '127.0.0.1', port: wsPort, ws: true }] },
    });
  });

  afterAll(async () => {
    record('ws-origin', { cases: 4, peakRssKb: gw?.peakRssKb });
    await gw?.stop();
    gw?.cleanup();
  });

  const connectWs = async (origin?: string) => {
    try {
      const c = await mqtt.connectAsync(`ws://127.0.0.1:${wsPort}`, {
        reconnectPeriod: 0,
        connectTimeout: 5000,
        wsOptions: origin ? { origin } : {},
      });
      await c.endAsync();
      return 'connected';
    } catch (err) {
      return `connack ${(err as { code?: number }).code}`;
    }
  };

  it('refuses an anonymous login from a page on another site (cross-site WebSocket hijacking)', async () => {
    expect(await connectWs('https://evil.example')).toBe('connack 5');
    expect(await connectWs('null')).toBe('connack 5');
    expect(await connectWs('http://127.0.0.1:8080')).toBe('connected'); // the gateway's own page
    expect(await connectWs()).toBe('connected'); // a tool, not a browser
    expect((await gw.status()).ingest.rejectedByReason.auth_anonymous).toBe(2);
  });
});

describe('anonymous HTTP ingest and web origins', () => {
  let gw: ChildGateway;
  beforeAll(async () => {
    gw = await startChildGateway({});
  });
  afterAll(async () => {
    await gw?.stop();
    gw?.cleanup();
  });

  // A web page on another site must not be able to make the operator's browser POST readings
  // to the loopback HTTP ingest (a simple text/plain request needs no CORS preflight).
  it('refuses an anonymous cross-site POST /api/events (CSRF)', async () => {
    const res = await fetch(`${gw.url}/api/events`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', origin: 'https://evil.example' },
      body: JSON.stringify({ topic: 'sensors/csrf', payload: 1 }),
    });
    await res.arrayBuffer();
    expect(res.status).toBeGreaterThanOrEqual(400);
  });
});
