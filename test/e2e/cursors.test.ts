/**
 * Cursors follow the config: the cursor of an uplink removed from the config is dropped (at start
 * and on reconfigure), so it cannot hold events back; local consumers keep theirs.
 */
import { afterAll, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { tempDir } from '../helpers/peers.js';

const data = tempDir('sluice-cursors-');
let gw: TestGateway | undefined;
afterAll(async () => {
  await gw?.stop();
  data.cleanup();
});

it('drops the cursors of removed uplinks and keeps local consumers', async () => {
  const dead = { type: 'mqtt' as const, url: 'mqtt://127.0.0.1:9', reconnect: { minDelay: '1s', maxDelay: '1s' } };
  const gateway = { id: 'gw-cur', dataDir: data.path };
  gw = await startTestGateway({ gateway, uplinks: [{ name: 'old', ...dead }, { name: 'kept', ...dead }] }, data.path);
  // A local consumer with a persisted cursor: one event read and acknowledged.
  await fetch(`${gw.url}/api/events`, { method: 'POST', body: JSON.stringify({ topic: 't', payload: 1 }) });
  const batch = await (await fetch(`${gw.url}/api/events?consumer=historian&wait=2s`)).json();
  const ack = await fetch(`${gw.url}/api/events/ack`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ consumer: 'historian', batchId: batch.batchId }),
  });
  expect(ack.status).toBe(200);
  const names = () => gw!.gateway.log.readerStats().map((r) => r.name).sort();
  expect(names()).toEqual(['kept', 'local:historian', 'old']);
  await gw.stop();

  gw = await startTestGateway({ gateway, uplinks: [{ name: 'kept', ...dead }] }, data.path);
  expect(names()).toEqual(['kept', 'local:historian']);

  await gw.gateway.reconfigure(validateConfig({ ...gw.gateway.config, uplinks: [] }));
  expect(names()).toEqual(['local:historian']);
});
