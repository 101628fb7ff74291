import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUaServer, type UaServer } from '../../../test/drivers/opcua-server.js';
import { freePort, tempDir } from '../../../test/helpers/peers.js';
import { sluice } from '../../../test/helpers/cli.js';

describe('sluice opcua browse', () => {
  const dir = tempDir('sluice-cli-ua-');
  let server: UaServer;
  beforeAll(async () => {
    server = await startUaServer({ port: await freePort(), pkiDir: join(dir.path, 'server') });
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
    dir.cleanup();
  });

  it('prints the address space with NodeIds, browse names, types and values', async () => {
    const r = await sluice('opcua', 'browse', '--endpoint', server.endpoint, '--node', 'ns=1;s=Plant', '--depth', '1', '--data', dir.path);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/1:Temperature {2}\[Variable\] {2}ns=1;s=Temperature {2}Double = /);
    expect(r.out).toContain('1:Label  [Variable]  ns=1;s=Label  String = "line-1"');
    const json = await sluice('opcua', 'browse', '--endpoint', server.endpoint, '--depth', '3', '--json', '--data', dir.path);
    const nodes = JSON.parse(json.out).nodes as { path: string; nodeId: string }[];
    expect(nodes.find((n) => n.nodeId === 'ns=1;s=Setpoint')?.path).toBe('/0:Objects/1:Plant/1:Setpoint');
  }, 60_000);

  it('says clearly when nobody answers, and refuses bad flags with usage', async () => {
    const port = await freePort();
    const r = await sluice('opcua', 'browse', '--endpoint', `opc.tcp://127.0.0.1:${port}`, '--data', dir.path);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^sluice opcua browse: .+/);
    expect((await sluice('opcua', 'browse', '--endpoint', 'http://x')).code).toBe(2);
    expect((await sluice('opcua', 'list')).code).toBe(2);
  }, 60_000);
});
