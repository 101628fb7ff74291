/**
 * The driver registry: `createDriver(config)` builds the driver of a config entry. Each type is
 * imported lazily, so modbus-serial and serialport (native bindings) and node-opcua load only on a
 * gateway that uses them.
 */
import type { Driver } from './driver.js';
import type { DriverConfig } from './schema.js';

export async function createDriver(config: DriverConfig): Promise<Driver> {
  switch (config.type) {
    case 'modbus-tcp':
    case 'modbus-rtu': {
      const { ModbusDriver } = await import('./modbus/index.js');
      return new ModbusDriver(config);
    }
    case 'serial': {
      const { SerialDriver } = await import('./serial/index.js');
      return new SerialDriver(config);
    }
    case 'system': {
      const { SystemDriver } = await import('./system/index.js');
      return new SystemDriver(config);
    }
    case 'opcua': {
      const { OpcuaDriver } = await import('./opcua/index.js');
      return new OpcuaDriver(config);
    }
    case 'simulator': {
      const { SimulatorDriver } = await import('./simulator/index.js');
      return new SimulatorDriver(config);
    }
    default: {
      const never: never = config;
      throw new Error(`unknown driver type "${(never as { type: string }).type}"`);
    }
  }
}
