/**
 * The fleet connection over TLS with a client certificate: it uses the url, CA and client
 * certificate of the uplink it names (a broker that requires certificates lets it in), and a
 * signed ping sent over that broker is answered.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { signCommand } from '../../src/fleet/command.js';
import { generateKeyPair, parsePrivateKey } from '../../src/fleet/keys.js';
import { Gateway } from '../../src/gateway.js';
import { waitFor } from '../helpers/gateway.js';
import { freePort, type Peer, startMosquitto, tempDir } from '../helpers/peers.js';

const pki = tempDir('sluice-fleet-pki-');
const file = (name: string) => join(pki.path, name);

describe('fleet connection over TLS', () => {
  let cloud: Peer;
  let gw: Gateway;
  const data = tempDir('sluice-fleet-tls-');

  beforeAll(async () => {
    const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=fleet-test-ca', '-keyout', file('ca.key'), '-out', file('ca.pem'));
    for (const [name, subject, ext] of [
      ['server', '/CN=127.0.0.1', 'subjectAltName=IP:127.0.0.1'],
      ['client', '/CN=gw-tls', 'extendedKeyUsage=clientAuth'],
    ]) {
      ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', subject, '-keyout', file(`${name}.key`), '-out', file(`${name}.csr`));
      execFileSync('sh', ['-c', `printf '%s\\n' '${ext}' > ${file(`${name}.ext`)}`]);
      ssl('x509', '-req', '-in', file(`${name}.csr`), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial', '-days', '1', '-extfile', file(`${name}.ext`), '-out', file(`${name}.pem`));
    }
    // Mosquitto drops root privileges to its own user: let it read the server's files.
    chmodSync(pki.path, 0o755);
    for (const f of readdirSync(pki.path)) chmodSync(file(f), 0o644);
    cloud = await startMosquitto(`cafile ${file('ca.pem')}\ncertfile ${file('server.pem')}\nkeyfile ${file('server.key')}\nrequire_certificate true\n`);
  });

  afterAll(async () => {
    await gw?.stop();
    await cloud?.stop();
    data.cleanup();
    pki.cleanup();
  });

  it('connects with the uplink certificate and answers a signed ping', async () => {
    const pair = generateKeyPair();
    const tls = { ca: file('ca.pem'), cert: file('client.pem'), key: file('client.key') };
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
      ca: readFileSync(tls.ca),
      cert: readFileSync(tls.cert),
      key: readFileSync(tls.key),
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
