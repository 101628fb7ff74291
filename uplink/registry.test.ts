import { describe, expect, it } from 'vitest';
import { drivers } from '../drivers/registry.js';
import { driverSchema } from '../drivers/schema.js';
import { silentLogger } from '../src/core/log.js';
import { createSink } from './index.js';
import { sinks } from './registry.js';
import { uplinkSchema } from './schema.js';

/** The issues zod reports about `type` itself (an unknown or mismatched discriminator). */
function typeIssues(result: { success: boolean; error?: { issues: { path: PropertyKey[] }[] } }) {
  return (result.error?.issues ?? []).filter((i) => i.path.length === 1 && i.path[0] === 'type');
}

describe('plugin registries', () => {
  it('every sink line is keyed by the type its schema accepts', () => {
    for (const type of Object.keys(sinks)) {
      expect(typeIssues(uplinkSchema.safeParse({ type, name: 'x' })), type).toEqual([]);
      expect(typeIssues(sinks[type as keyof typeof sinks].schema.safeParse({ type, name: 'x' })), type).toEqual([]);
    }
    expect(typeIssues(uplinkSchema.safeParse({ type: 'carrier-pigeon', name: 'x' }))).toHaveLength(1);
  });

  it('every driver line is keyed by the type its schema accepts', () => {
    for (const type of Object.keys(drivers)) {
      expect(typeIssues(driverSchema.safeParse({ type, name: 'x' })), type).toEqual([]);
      expect(typeIssues(drivers[type as keyof typeof drivers].schema.safeParse({ type, name: 'x' })), type).toEqual([]);
    }
  });

  it('every line loads its code, and a sink builds from a valid config', async () => {
    for (const p of [...Object.values(sinks), ...Object.values(drivers)]) expect(typeof (await p.load())).toBe('function');
    const config = uplinkSchema.parse({ type: 'http', name: 'cloud', url: 'http://127.0.0.1:9/' });
    const sink = await createSink(config, { gatewayId: 'gw', logger: silentLogger, dataDir: '/tmp' });
    expect(sink.health().connected).toBe(false);
  }, 60_000);
});
