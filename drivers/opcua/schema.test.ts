import { describe, expect, it } from 'vitest';
import { parseConfigText, validateConfig } from '../../src/config/load.js';
import { nodeName, opcuaSchema } from './schema.js';

/** The config example of the issue that asked for OPC UA and writes, verbatim. */
const ISSUE_EXAMPLE = `
drivers:
  - name: plc-ua
    type: opcua
    endpoint: "opc.tcp://127.0.0.1:4840"
    security: {mode: None}
    nodes:
      - {nodeId: "ns=1;s=Temperature", topic: "plant/ua/temp"}
  - name: plc-mb
    type: modbus-tcp
    host: 127.0.0.1
    port: 5020
    devices:
      - unitId: 1
        interval: 500ms
        points:
          - {name: setpoint, table: holding, address: 10, type: uint16, topic: plant/setpoint,
             writable: {min: 0, max: 100}}
`;

describe('opcua and writable config', () => {
  it("validates the issue's example as written", () => {
    const config = validateConfig(parseConfigText(ISSUE_EXAMPLE));
    const [ua, mb] = config.drivers;
    expect(ua).toMatchObject({ type: 'opcua', mode: 'subscription', security: { mode: 'None' }, identity: { type: 'anonymous' } });
    expect(mb.type === 'modbus-tcp' && mb.devices[0].points[0].writable).toEqual({
      min: 0,
      max: 100,
      minInterval: 0,
      verify: false,
      queueFor: 0,
    });
  });

  const base = { name: 'ua', type: 'opcua', endpoint: 'opc.tcp://plc:4840', nodes: [{ nodeId: 'ns=2;s=A' }] };
  const problems = (over: Record<string, unknown>) => {
    const r = opcuaSchema.safeParse({ ...base, ...over });
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('refuses what would not work, naming the field', () => {
    expect(problems({ endpoint: 'http://plc' })[0]).toMatch(/^endpoint: is an opc.tcp:\/\/ URL/);
    expect(problems({ security: { mode: 'None', policy: 'Basic256Sha256' } })[0]).toMatch(/needs mode Sign or SignAndEncrypt/);
    expect(problems({ security: { mode: 'Sign', policy: 'None' } })[0]).toMatch(/needs a policy other than None/);
    expect(problems({ nodes: [{ topic: 'x' }] })[0]).toMatch(/give either nodeId or browsePath/);
    expect(problems({ nodes: [{ nodeId: 'ns=2;s=A' }, { nodeId: 'ns=3;s=A' }] })[0]).toMatch(/node name "A" is also nodes\[0\]; set "name"/);
    expect(problems({ identity: { type: 'username', username: 'u' } })[0]).toMatch(/give either password or passwordFile/);
    expect(problems({ nodes: [{ nodeId: 'ns=2;s=A', writable: { min: 5, max: 1 } }] })[0]).toMatch(/min \(5\) is above max \(1\)/);
  });

  it('names nodes after their NodeId or browse path', () => {
    expect(nodeName({ nodeId: 'ns=2;s=Line 1.Temp' })).toBe('Line_1.Temp');
    expect(nodeName({ nodeId: 'i=2258' })).toBe('i_2258');
    expect(nodeName({ browsePath: '/Objects/2:Plant/2:Temperature' })).toBe('Temperature');
    expect(nodeName({ name: 'x', nodeId: 'ns=1;i=5' })).toBe('x');
  });

  it('refuses writes the Modbus protocol cannot do', () => {
    const mb = (point: Record<string, unknown>) => {
      try {
        validateConfig({ drivers: [{ name: 'm', type: 'modbus-tcp', host: 'h', devices: [{ points: [point] }] }] });
        return '';
      } catch (err) {
        return (err as Error).message;
      }
    };
    expect(mb({ name: 'a', table: 'input', address: 0, writable: true })).toMatch(/input registers are read-only/);
    expect(mb({ name: 'a', table: 'holding', address: 0, bit: 3, writable: true })).toMatch(/a single bit of a register cannot be written/);
    expect(mb({ name: 'a', table: 'coil', address: 0, writable: true })).toBe('');
  });
});
