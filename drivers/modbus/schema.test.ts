import { describe, expect, it } from 'vitest';
import { planRequests } from './plan.js';
import { deviceSchema, modbusTcpSchema } from './schema.js';

function issues(points: unknown[], extra: Record<string, unknown> = {}) {
  const r = modbusTcpSchema.safeParse({ name: 'p', type: 'modbus-tcp', host: 'h', devices: [{ points, ...extra }] });
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('modbus register map validation', () => {
  it('names the point that overlaps another', () => {
    expect(
      issues([
        { name: 'a', table: 'holding', address: 10, type: 'float32', topic: 't/a' },
        { name: 'b', table: 'holding', address: 11, topic: 't/b' },
      ]),
    ).toEqual(['devices.0.points.1.address: point "b" overlaps point "a" at holding address 11']);
  });

  it('allows bit points to share a register, and the same address in another table', () => {
    expect(
      issues([
        { name: 'word', table: 'holding', address: 5, topic: 't/w' },
        { name: 'b0', table: 'holding', address: 5, bit: 0, topic: 't/b0' },
        { name: 'b1', table: 'holding', address: 5, bit: 1, topic: 't/b1' },
        { name: 'in', table: 'input', address: 5, topic: 't/i' },
      ]),
    ).toEqual([]);
    expect(
      issues([
        { name: 'b0', table: 'holding', address: 5, bit: 0, topic: 't/b0' },
        { name: 'again', table: 'holding', address: 5, bit: 0, topic: 't/b1' },
      ]),
    ).toEqual(['devices.0.points.1.address: point "again" overlaps point "b0" at holding address 5']);
  });

  it('refuses values past the last address, wrong types per table and limits above the protocol', () => {
    expect(issues([{ name: 'big', table: 'input', address: 65534, type: 'float64', topic: 't' }])).toEqual([
      'devices.0.points.0.address: point "big": a float64 at 65534 runs past the last address 65535',
    ]);
    expect(issues([{ name: 'c', table: 'coil', address: 0, type: 'int16', topic: 't' }])[0]).toMatch(
      /points\.0\.type: point "c": a coil holds one bit/,
    );
    expect(issues([{ name: 'r', table: 'holding', address: 0, type: 'bool', topic: 't' }])[0]).toMatch(
      /point "r": a register is not bool/,
    );
    expect(issues([{ name: 'f', table: 'holding', address: 0, type: 'float32', bit: 3, topic: 't' }])[0]).toMatch(
      /points\.0\.bit/,
    );
    expect(issues([{ name: 'a', table: 'holding', address: 0, topic: 't' }], { maxRegisters: 126 })).toEqual([
      'devices.0.maxRegisters: is at most 125 registers per request (the Modbus limit)',
    ]);
    expect(issues([{ name: 'a', table: 'holding', address: 0, topic: 't', colour: 'red' }])[0]).toMatch(/colour/);
  });

  it('refuses the same unit id twice in one driver', () => {
    const r = modbusTcpSchema.safeParse({
      name: 'p',
      type: 'modbus-tcp',
      host: 'h',
      devices: [
        { unitId: 1, points: [{ name: 'a', table: 'coil', address: 0 }] },
        { unitId: 1, points: [{ name: 'a', table: 'coil', address: 0 }] },
      ],
    });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0].path).toEqual(['devices', 1, 'unitId']);
  });
});

describe('request coalescing', () => {
  it('joins neighbours up to 125 registers and 2000 bits, and splits beyond', () => {
    const points = [
      ...Array.from({ length: 130 }, (_, i) => ({ name: `r${i}`, table: 'holding', address: 1000 + i })),
      ...Array.from({ length: 2100 }, (_, i) => ({ name: `c${i}`, table: 'coil', address: i })),
      { name: 'far', table: 'holding', address: 2000, type: 'float32' },
    ];
    const device = deviceSchema.parse({ points });
    const plan = planRequests(device, (p) => `t/${p.name}`);
    expect(plan.map((r) => [r.table, r.address, r.count])).toEqual([
      ['holding', 1000, 125],
      ['holding', 1125, 5],
      ['holding', 2000, 2],
      ['coil', 0, 2000],
      ['coil', 2000, 100],
    ]);
    expect(plan[0].points[0].topic).toBe('t/r0');
  });

  it('reads across small gaps when maxGap allows', () => {
    const device = deviceSchema.parse({
      maxGap: 3,
      points: [
        { name: 'a', table: 'input', address: 0 },
        { name: 'b', table: 'input', address: 4, type: 'int32' },
        { name: 'c', table: 'input', address: 10 },
      ],
    });
    expect(planRequests(device, (p) => p.name).map((r) => [r.address, r.count])).toEqual([
      [0, 6],
      [10, 1],
    ]);
  });
});
