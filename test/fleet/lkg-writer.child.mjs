// Child of lkg-crash.test.ts: loads the TypeScript fleet code through Vite (as vitest does) and
// writes last-known-good configs with increasing versions as fast as it can, printing each version
// once its write resolved, until it is killed.
import { createServer } from 'vite';

const [dataDir, publicKey] = process.argv.slice(2);
const server = await createServer({ root: process.cwd(), logLevel: 'silent', server: { middlewareMode: true, hmr: false }, appType: 'custom', optimizeDeps: { noDiscovery: true, include: [] } });
const { writeLastKnownGood } = await server.ssrLoadModule('/src/fleet/lkg.ts');
const { validateConfig } = await server.ssrLoadModule('/src/config/load.ts');
for (let version = 1; ; version++) {
  const raw = {
    gateway: { id: 'gw-crash', dataDir },
    uplinks: [{ name: 'cloud', type: 'mqtt', url: 'mqtt://127.0.0.1:1' }],
    // A config of some size, so a torn write would show.
    drivers: Array.from({ length: 40 }, (_, i) => ({ name: `sim${i}`, type: 'simulator', interval: 1000 + version })),
    fleet: { uplink: 'cloud', trustedKeys: [{ keyId: 'k', publicKey }], configVersion: version },
  };
  await writeLastKnownGood(dataDir, { version, config: raw, validated: validateConfig(raw) });
  process.stdout.write(`${version}\n`);
}
