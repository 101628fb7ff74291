/**
 * The fleet connection over TLS with a client certificate: it uses the url, CA and client
 * certificate of the uplink it names (a broker that requires certificates lets it in), and a
 * signed ping sent over that broker is answered.
 */
import { Writable } from 'node:stream';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { signCommand } from '../../src/fleet/command.js';
import { generateKeyPair, parsePrivateKey } from '../../src/fleet/keys.js';
import { Gateway } from '../../src/gateway.js';
import { type CertAuthority, type CertFiles, certAuthority, mosquittoClientCertTls } from '../helpers/certs.js';
import { waitFor } from '../helpers/gateway.js';
import { freePort, type Peer, startMosquitto, tempDir } from '../helpers/peers.js';

describe('fleet connection over TLS', () => {
  let cloud: Peer;
  let gw: Gateway;
  let ca: CertAuthority;
  let client: CertFiles;
  const data = tempDir('sluice-fleet-tls-');

  beforeAll(async () => {
    ca = certAuthority('fleet-test-ca');
    client = ca.client('gw-tls');
    cloud = await startMosquitto(mosquittoClientCertTls(ca, ca.server()));
  });

  afterAll(async () => {
    await gw?.stop();
    await cloud?.stop();
    data.cleanup();
    ca?.cleanup();
  });

  it('connects with the uplink certificate and answers a signed ping', async () => {
    const pair = generateKeyPair();
    const tls = { ca: ca.certPath, cert: client.certPath, key: client.keyPath };
    const config = validateConfig({
      gateway: { id: 'gw-tls', dataDir: data.path },
      broker: { listeners: [{ host: '127.0.0.1', port: await freePort() }] },
      http: { host: '127.0.0.1', port: await freePort() },
      uplinks: [{ name: 'cloud', type: 'mqtt', url: `mqtts://127.0.0.1:${cloud.port}`, tls }],
      fleet: { uplink: 'cloud', trustedKeys: [{ keyId: 'ops', publicKey: pair.publicKey }] },
    });
    gw = new Gateway(config, { logger: pino({ level: 'info' }, new Writable({ write: (_c, _e, cb) => cb() })) });
    await gw.start();
    await waitFor(() => gw.fleet?.status().connected, 15_000, 'the fleet connection over TLS');

    const operator = await mqtt.connectAsync(`mqtts://127.0.0.1:${cloud.port}`, {
      ca: ca.cert,
      cert: client.cert,
      key: client.key,
      clientId: 'operator-tls',
    });
    const results: { id: string; ok: boolean }[] = [];
    operator.on('message', (_t, p) => results.push(JSON.parse(p.toString())));
    await operator.subscribeAsync('sluice/gw-tls/cmd/result', { qos: 1 });
    const cmd = signCommand(parsePrivateKey(pair.privatePem), { type: 'ping', device: 'gw-tls', keyId: 'ops' });
    await operator.publishAsync('sluice/gw-tls/cmd', JSON.stringify(cmd), { qos: 1 });
    const res = await waitFor(() => results.find((r) => r.id === cmd.id), 10_000, 'the ping result');
    await operator.endAsync();
    expect(res).toMatchObject({ ok: true, result: { pong: true } });
  }, 40_000);
});
