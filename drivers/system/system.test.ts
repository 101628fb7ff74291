import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { collectEvents } from '../../test/drivers/collect.js';
import { eventually } from '../../test/drivers/field-peers.js';
import { tempDir } from '../../test/helpers/peers.js';
import { SystemDriver } from './index.js';
import { systemSchema } from './schema.js';

const dir = tempDir('sluice-system-');
afterAll(() => dir.cleanup());

describe('system driver', () => {
  it('reports load, memory and free space of the data directory on this machine', async () => {
    const c = collectEvents(dir.path);
    const driver = new SystemDriver(systemSchema.parse({ name: 'sys', type: 'system', interval: '100ms' }), {
      thermalDir: join(dir.path, 'no-thermal'),
      meminfo: '/proc/meminfo',
      vcgencmd: join(dir.path, 'no-vcgencmd'),
    });
    await driver.start(c.ctx);
    try {
      await eventually(
        () => c.count('sluice/system/load1') >= 2,
        5000,
        'two samples',
      );
      const byTopic = new Map(c.events.map((e) => [e.topic, e.payload as Record<string, unknown>]));
      expect(typeof byTopic.get('sluice/system/load1')?.value).toBe('number');
      expect(byTopic.get('sluice/system/memory_used')).toMatchObject({ unit: '%' });
      expect(byTopic.get('sluice/system/memory_used')?.value).toBeGreaterThan(0);
      expect(byTopic.get('sluice/system/disk_free')).toMatchObject({ unit: 'B', path: dir.path });
      expect(byTopic.get('sluice/system/disk_free')?.value).toBeGreaterThan(0);
      // Sources the board does not have are not reported at all.
      expect(byTopic.has('sluice/system/cpu_temp')).toBe(false);
      expect(byTopic.has('sluice/system/throttled')).toBe(false);
      expect(driver.health().devices[0]).toMatchObject({ device: 'system', state: 'up', failures: {} });
      expect(c.events.find((e) => e.kind === 'status')?.payload).toMatchObject({ state: 'up', previous: 'starting' });
    } finally {
      await driver.stop(Date.now() + 1000);
    }
  });

  it('reads the CPU thermal zone and the Pi throttling flags where they exist', async () => {
    const thermal = join(dir.path, 'thermal');
    mkdirSync(join(thermal, 'thermal_zone0'), { recursive: true });
    mkdirSync(join(thermal, 'thermal_zone1'), { recursive: true });
    writeFileSync(join(thermal, 'thermal_zone0', 'type'), 'acpitz\n');
    writeFileSync(join(thermal, 'thermal_zone0', 'temp'), '30000\n');
    writeFileSync(join(thermal, 'thermal_zone1', 'type'), 'cpu-thermal\n');
    writeFileSync(join(thermal, 'thermal_zone1', 'temp'), '48312\n');
    // vcgencmd exists only on a Pi: this stand-in prints what a Pi under-volted since boot prints.
    const vcgencmd = join(dir.path, 'vcgencmd');
    writeFileSync(vcgencmd, '#!/bin/sh\necho "throttled=0x50005"\n');
    chmodSync(vcgencmd, 0o755);
    const c = collectEvents(dir.path);
    const driver = new SystemDriver(systemSchema.parse({ name: 'pi', type: 'system', topicPrefix: 'gw/health' }), {
      thermalDir: thermal,
      meminfo: join(dir.path, 'no-meminfo'),
      vcgencmd,
    });
    await driver.start(c.ctx); // samples at once, then every 60 s
    await eventually(() => c.events.length > 0, 5000, 'a sample');
    await driver.stop(Date.now() + 1000);
    const byTopic = new Map(c.events.map((e) => [e.topic, e.payload]));
    expect(byTopic.get('gw/health/cpu_temp')).toEqual({ value: 48.312, unit: '°C' });
    expect(byTopic.get('gw/health/throttled')).toMatchObject({
      value: 0x50005,
      underVoltage: true,
      frequencyCapped: false,
      throttled: true,
      underVoltageOccurred: true,
      throttledOccurred: true,
      softTempLimitOccurred: false,
    });
    // The missing meminfo is counted, the rest still reported: degraded, not down.
    const h = driver.health().devices[0];
    expect(h.failures.memory).toBe(1);
    expect(h.state).toBe('stopped');
    expect(c.events.find((e) => e.kind === 'status')?.payload).toMatchObject({ state: 'degraded' });
  });
});
