import { afterEach, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

describe('a disabled uplink', () => {
  let gw: TestGateway | undefined;
  afterEach(async () => {
    await gw?.stop();
    gw?.cleanup();
  });

  it('shows in status as disabled with its backlog, connects nowhere, and comes alive when enabled', async () => {
    // Port 9 on loopback: nothing listens; a connection attempt would show as an error.
    const uplink = { name: 'later', type: 'http' as const, url: 'http://127.0.0.1:9/ingest', enabled: false };
    gw = await startTestGateway({ uplinks: [uplink] });
    await gw.gateway.ingest([{ source: 'test', topic: 'plant/a', payload: { v: 1 } }, { source: 'test', topic: 'plant/b', payload: { v: 2 } }]);
    const res = await fetch(`${gw.url}/api/status`);
    const status = (await res.json()) as { uplinks: { name: string; state: string; pendingEvents: number; lastError: string | null }[] };
    expect(status.uplinks).toEqual([expect.objectContaining({ name: 'later', state: 'disabled', pendingEvents: 2, lastError: null })]);

    await gw.gateway.reconfigure({ ...gw.gateway.config, uplinks: [{ ...gw.gateway.config.uplinks[0], enabled: true }] });
    const state = gw.gateway.status().uplinks[0].state;
    expect(state).not.toBe('disabled');
  });
});
