import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { DriverHealth } from './driver.js';
import { registerDriverMetrics } from './metrics.js';

describe('driver metrics', () => {
  it('exposes device state, failures by reason and last success from health()', async () => {
    const registry = new Registry();
    let list: DriverHealth[] = [
      {
        name: 'plc1',
        type: 'modbus-tcp',
        devices: [
          {
            device: 'unit-1',
            state: 'up',
            lastSuccessTs: 1_700_000_000_000,
            consecutiveFailures: 0,
            failures: { timeout: 3, exception: 1 },
          },
          { device: 'unit-2', state: 'down', lastSuccessTs: null, consecutiveFailures: 7, failures: { connect: 7 } },
        ],
      },
    ];
    registerDriverMetrics(registry, () => list);
    const text = await registry.metrics();
    expect(text).toContain('sluice_driver_device_up{driver="plc1",type="modbus-tcp",device="unit-1"} 1');
    expect(text).toContain('sluice_driver_device_up{driver="plc1",type="modbus-tcp",device="unit-2"} 0');
    expect(text).toContain('sluice_driver_device_state{driver="plc1",device="unit-2",state="down"} 1');
    expect(text).toContain('sluice_driver_device_state{driver="plc1",device="unit-2",state="up"} 0');
    expect(text).toContain('# TYPE sluice_driver_device_failures_total counter');
    expect(text).toContain('sluice_driver_device_failures_total{driver="plc1",device="unit-1",reason="timeout"} 3');
    expect(text).toContain('sluice_driver_device_consecutive_failures{driver="plc1",device="unit-2"} 7');
    expect(text).toContain(
      'sluice_driver_device_last_success_timestamp_seconds{driver="plc1",device="unit-1"} 1700000000',
    );
    expect(text).not.toContain('last_success_timestamp_seconds{driver="plc1",device="unit-2"}');
    list = [];
    expect(await registry.metrics()).not.toContain('plc1');
  });
});
