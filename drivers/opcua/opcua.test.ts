import { existsSync, mkdirSync, readdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectEvents } from '../../test/drivers/collect.js';
import { startUaServer, type UaServer } from '../../test/drivers/opcua-server.js';
import { waitFor } from '../../test/helpers/gateway.js';
import { freePort, tempDir } from '../../test/helpers/peers.js';
import { OPCUACertificateManager } from 'node-opcua-certificate-manager';
import { OpcuaDriver } from './index.js';
import { opcuaSchema } from './schema.js';

type Payload = { value: unknown; quality?: string; status?: string; unit?: string };


const NODES = [
  { nodeId: 'ns=1;s=Temperature', topic: 'ua/temp', unit: '°C', samplingInterval: '100ms' },
  { nodeId: 'ns=1;s=Counter', topic: 'ua/counter', samplingInterval: '100ms' },
  { nodeId: 'ns=1;s=Flag', topic: 'ua/flag' },
  { nodeId: 'ns=1;s=Label', topic: 'ua/label' },
  { nodeId: 'ns=1;s=Stamp', topic: 'ua/stamp' },
  { nodeId: 'ns=1;s=Series', topic: 'ua/series' },
  { nodeId: 'ns=1;s=Big', topic: 'ua/big' },
  { nodeId: 'ns=1;s=Broken', topic: 'ua/broken' },
  { nodeId: 'ns=1;s=Shaky', topic: 'ua/shaky' },
  { browsePath: '/Objects/1:Plant/1:Setpoint', topic: 'ua/setpoint', writable: { min: 0, max: 100, verify: true } },
];

describe('opcua driver against a node-opcua server', () => {
  const dir = tempDir('sluice-ua-');
  let port: number;
  let server: UaServer;
  beforeAll(async () => {
    port = await freePort();
    server = await startUaServer({ port, pkiDir: join(dir.path, 'server-pki'), tickMs: 100 });
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
    dir.cleanup();
  });

  it('subscribes: every type mapped, deviceTs, bad and uncertain kept, a write verified; survives a server restart', async () => {
    const c = collectEvents<Payload>(join(dir.path, 'gw'));
    const driver = new OpcuaDriver(
      opcuaSchema.parse({ name: 'plc-ua', type: 'opcua', endpoint: server.endpoint, publishingInterval: '100ms', nodes: NODES }),
    );
    await driver.start(c.ctx);
    try {
      await waitFor(() => c.count('ua/counter') >= 3 && c.latest('ua/setpoint'), 20_000, 'readings');
      const p = (t: string) => c.latest(t)!;
      expect(p('ua/temp')).toMatchObject({ unit: '°C' });
      expect(typeof p('ua/temp').value).toBe('number');
      expect(c.last('ua/temp')!.deviceTs).toBeGreaterThan(Date.now() - 60_000);
      expect(p('ua/flag').value).toBe(true);
      expect(p('ua/label').value).toBe('line-1');
      expect(p('ua/stamp').value).toBe('2026-01-02T03:04:05.000Z');
      expect(p('ua/series').value).toEqual([1.5, 2.5, 3.5]);
      expect(p('ua/big').value).toBe(2 ** 32 + 2);
      expect(p('ua/broken')).toMatchObject({ quality: 'bad', status: 'BadSensorFailure' });
      expect(p('ua/shaky')).toMatchObject({ value: 7.5, quality: 'uncertain', status: 'UncertainLastUsableValue' });
      expect(p('ua/flag').quality).toBeUndefined();
      expect(driver.health().devices[0]).toMatchObject({ device: server.endpoint, state: 'up' });
      expect(driver.writablePoints()).toEqual([
        expect.objectContaining({ point: 'Setpoint', device: server.endpoint }),
      ]);

      // A write, read back; a value of the wrong type refused with a sentence.
      await expect(driver.write('Setpoint', 42.5, true)).resolves.toEqual({ readBack: 42.5 });
      expect(server.get('Setpoint')).toBe(42.5);
      await waitFor(() => c.latest('ua/setpoint')!.value === 42.5, 5000, 'the write in a reading');
      await expect(driver.write('Setpoint', 'high', false)).rejects.toThrow(/holds Double: the value needs a number/);

      // Restart the server on the same port: readings resume without restarting the driver.
      await server.stop();
      await waitFor(() => driver.health().devices[0].state !== 'up', 20_000, 'the loss noticed');
      await expect(driver.write('Setpoint', 1, false)).rejects.toThrow(/^not connected to opc.tcp:/);
      server = await startUaServer({ port, pkiDir: join(dir.path, 'server-pki'), tickMs: 100 });
      const before = c.count('ua/counter');
      await waitFor(() => c.count('ua/counter') > before + 3, 45_000, 'readings after the restart');
      await waitFor(() => driver.health().devices[0].state === 'up', 10_000, 'up again');
      // The restarted server counts from 0 again: the new values are real ones, not replays.
      expect(c.latest('ua/counter')!.value).toBeLessThan(400);
      expect(c.states()).toContain('up');
    } finally {
      await driver.stop(Date.now() + 3000);
    }
    expect(driver.health().devices[0].state).toBe('stopped');
  }, 120_000);

  it('a deadband holds back changes smaller than it', async () => {
    const c = collectEvents<Payload>(join(dir.path, 'gw3'));
    const driver = new OpcuaDriver(
      opcuaSchema.parse({
        name: 'plc-db',
        type: 'opcua',
        endpoint: server.endpoint,
        publishingInterval: '100ms',
        nodes: [
          // Counter moves by 1 per 100 ms tick: a deadband of 1000 passes only the first value.
          { nodeId: 'ns=1;s=Counter', topic: 'db/held', samplingInterval: '100ms', deadband: 1000 },
          { nodeId: 'ns=1;s=Counter', name: 'free', topic: 'db/free', samplingInterval: '100ms' },
        ],
      }),
    );
    await driver.start(c.ctx);
    try {
      await waitFor(() => c.count('db/free') >= 8, 20_000, 'free-running readings');
      expect(c.count('db/held')).toBe(1);
    } finally {
      await driver.stop(Date.now() + 3000);
    }
  }, 60_000);

  it('polls when asked, and counts a node that does not exist without losing the others', async () => {
    const c = collectEvents<Payload>(join(dir.path, 'gw2'));
    const driver = new OpcuaDriver(
      opcuaSchema.parse({
        name: 'plc-poll',
        type: 'opcua',
        endpoint: server.endpoint,
        mode: 'poll',
        interval: '200ms',
        // The form `sluice opcua browse` prints (namespace 0 spelled out) resolves too.
        nodes: [{ browsePath: '/0:Objects/1:Plant/1:Counter', topic: 'p/counter' }, { browsePath: '/Objects/1:Plant/1:Nope', topic: 'p/nope' }],
      }),
    );
    await driver.start(c.ctx);
    try {
      await waitFor(() => c.count('p/counter') >= 3, 20_000, `polled readings ${JSON.stringify(driver.health())}`);
      const values = c.events.filter((e) => e.topic === 'p/counter').map((e) => (e.payload as Payload).value as number);
      expect(values.at(-1)).toBeGreaterThan(values[0]);
      expect(driver.health().devices[0].failures.node).toBeGreaterThanOrEqual(1);
      expect(driver.health().devices[0].lastError).toMatch(/Nope does not resolve/);
    } finally {
      await driver.stop(Date.now() + 3000);
    }
  }, 60_000);
});

describe('opcua driver on a secured endpoint', () => {
  const dir = tempDir('sluice-ua-sec-');
  let server: UaServer;
  beforeAll(async () => {
    server = await startUaServer({
      port: await freePort(),
      pkiDir: join(dir.path, 'server-pki'),
      secure: true,
      users: { operator: 's3cret' },
    });
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
    dir.cleanup();
  });

  const config = (password: string, security: Record<string, string> = { mode: 'SignAndEncrypt', policy: 'Basic256Sha256' }) =>
    opcuaSchema.parse({
      name: 'plc-sec',
      type: 'opcua',
      endpoint: server.endpoint,
      security,
      identity: { type: 'username', username: 'operator', password },
      maxBackoff: '1s',
      nodes: [{ nodeId: 'ns=1;s=Label', topic: 's/label' }],
    });

  it('refuses an untrusted server certificate until the operator trusts it; then reads with SignAndEncrypt and a user', async () => {
    const gwDir = join(dir.path, 'gw');
    const c = collectEvents<Payload>(gwDir);
    const driver = new OpcuaDriver(config('s3cret'));
    await driver.start(c.ctx);
    try {
      const pki = join(gwDir, 'opcua-pki');
      await waitFor(() => driver.health().devices[0].failures.certificate, 30_000, 'the certificate refused');
      expect(driver.health().devices[0].lastError).toMatch(/not trusted: move it from .*rejected/);
      expect(c.count('s/label')).toBe(0);
      // The client certificate was made on first start, in the data dir.
      expect(readdirSync(join(pki, 'own/certs')).some((f) => f.endsWith('.pem'))).toBe(true);
      // The operator trusts the PLC: the rejected certificate moves to trusted/certs.
      const rejected = await waitFor(() => readdirSync(join(pki, 'rejected')).filter((f) => /\.(pem|der)$/.test(f)), 10_000, 'a rejected cert');
      mkdirSync(join(pki, 'trusted/certs'), { recursive: true });
      for (const f of rejected) renameSync(join(pki, 'rejected', f), join(pki, 'trusted/certs', f));
      await waitFor(() => c.count('s/label') >= 1, 30_000, 'a reading over SignAndEncrypt').catch((err) => {
        throw new Error(`${err.message}: ${JSON.stringify(driver.health())}`);
      });
      expect(c.latest('s/label')!.value).toBe('line-1');
      expect(existsSync(join(pki, 'trusted/certs', rejected[0]))).toBe(true);
    } finally {
      await driver.stop(Date.now() + 3000);
    }
  }, 90_000);

  it('reads with mode Sign and policy Aes256_Sha256_RsaPss once the server is trusted', async () => {
    const c = collectEvents<Payload>(join(dir.path, 'gw'));
    const driver = new OpcuaDriver(config('s3cret', { mode: 'Sign', policy: 'Aes256_Sha256_RsaPss' }));
    await driver.start(c.ctx);
    try {
      await waitFor(() => c.count('s/label') >= 1, 30_000, 'a reading over Sign');
    } finally {
      await driver.stop(Date.now() + 3000);
    }
  }, 60_000);

  it('logs in with an X.509 user certificate', async () => {
    const userPki = join(dir.path, 'user-pki');
    const m = new OPCUACertificateManager({ rootFolder: userPki });
    await m.initialize();
    const certificate = join(userPki, 'own/certs/operator.pem');
    await m.createSelfSignedCertificate({
      outputFile: certificate,
      subject: '/CN=operator',
      applicationUri: 'urn:sluice:operator',
      dns: [],
      startDate: new Date(Date.now() - 86_400_000),
      validity: 365,
    });
    await m.dispose();
    const c = collectEvents<Payload>(join(dir.path, 'gw'));
    const driver = new OpcuaDriver(
      opcuaSchema.parse({
        ...config('unused'),
        identity: { type: 'certificate', certificate, privateKey: join(userPki, 'own/private/private_key.pem') },
      }),
    );
    await driver.start(c.ctx);
    try {
      await waitFor(() => c.count('s/label') >= 1, 30_000, 'a reading as the X.509 user').catch((err) => {
        throw new Error(`${err.message}: ${JSON.stringify(driver.health())}`);
      });
    } finally {
      await driver.stop(Date.now() + 3000);
    }
  }, 60_000);

  it('a wrong password is a counted identity failure, not a crash', async () => {
    const c = collectEvents<Payload>(join(dir.path, 'gw'));
    const driver = new OpcuaDriver(config('wrong'));
    await driver.start(c.ctx);
    try {
      await waitFor(() => driver.health().devices[0].failures.identity, 30_000, `the identity refused ${JSON.stringify(driver.health())}`);
      expect(c.count('s/label')).toBe(0);
    } finally {
      await driver.stop(Date.now() + 3000);
    }
  }, 60_000);
});
