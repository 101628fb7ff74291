/** Starting a real Gateway in-process on free ports with a temp data dir, for tests that cross folders. */
import { validateConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { Gateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/core/log.js';
import { freePort, tempDir } from './peers.js';
import { until } from './until.js';

export interface TestGateway {
  gateway: Gateway;
  mqttPort: number;
  httpPort: number;
  dataDir: string;
  url: string;
  /** Stops the gateway (the data dir stays until cleanup). */
  stop(): Promise<void>;
  cleanup(): void;
}

/** Starts a gateway; `overrides` is merged over a loopback config with anonymous clients allowed. */
export async function startTestGateway(overrides: Partial<ConfigInput> = {}, dataDir?: string): Promise<TestGateway> {
  const mqttPort = await freePort();
  const httpPort = await freePort();
  const dir = dataDir ? { path: dataDir, cleanup() {} } : tempDir('sluice-gw-');
  const config = validateConfig({
    gateway: { id: 'gw-test', dataDir: dir.path, ...(overrides.gateway ?? {}) },
    broker: { listeners: [{ host: '127.0.0.1', port: mqttPort }], ...(overrides.broker ?? {}) },
    http: { host: '127.0.0.1', port: httpPort, ...(overrides.http ?? {}) },
    buffer: { commitInterval: 2, ...(overrides.buffer ?? {}) },
    ...Object.fromEntries(
      Object.entries(overrides).filter(([k]) => !['gateway', 'broker', 'http', 'buffer'].includes(k)),
    ),
  });
  const gateway = new Gateway(config, { logger: silentLogger });
  await gateway.start();
  return {
    gateway,
    mqttPort,
    httpPort,
    dataDir: dir.path,
    url: `http://127.0.0.1:${httpPort}`,
    stop: () => gateway.stop(),
    cleanup: dir.cleanup,
  };
}

/** Polls until a truthy value (test/helpers/until.ts), 10 s by default. */
export const waitFor = <T>(check: Parameters<typeof until<T>>[0], timeoutMs = 10_000, what = 'condition') => until(check, timeoutMs, what, 50);
