import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { encodeEvent, type EventInput } from '../src/core/event.js';
import { ChunkBuilder, ChunkCorruptError, decodeChunk, KIND_CODE, UNSYNCED } from './chunk.js';
import { wireChunk } from './wire.js';

function roundTrip(events: EventInput[], gatewayId = 'gw-7') {
  const b = new ChunkBuilder(gatewayId);
  events.forEach((e, i) => b.add(100 + i, 1_700_000_000_000 + i, KIND_CODE[e.kind ?? 'reading'], e));
  const decoded = decodeChunk(b.build(42));
  return { boot: decoded.boot, ...wireChunk(decoded) };
}

describe('chunk', () => {
  it('stores fields; the wire side rebuilds the very envelope encodeEvent writes', () => {
    const events: EventInput[] = [
      { source: 'mqtt', topic: 'a/b', payload: undefined, body: Buffer.from('  {"v": 1.5}\n') },
      { source: 'mqtt', topic: 'a/c', payload: undefined, body: Buffer.from('21.5C') },
      { source: 'mqtt', topic: 'a/d', payload: undefined, body: Buffer.from(' 7 ') },
      { source: 'modbus:plc', topic: 'plant/ünï', payload: { x: Number.NaN, s: 'é' }, deviceTs: 99 },
      { source: 'analytics', topic: 'a/b', payload: { z: 3 }, kind: 'anomaly' },
    ];
    const chunk = roundTrip(events);
    expect(chunk.boot).toBe(42);
    expect(chunk.events.map((e) => e.seq)).toEqual([100, 101, 102, 103, 104]);
    const payloads = chunk.events.map((e) => JSON.parse(e.json).payload);
    expect(payloads).toEqual([{ v: 1.5 }, '21.5C', 7, { x: null, s: 'é' }, { z: 3 }]);
    chunk.events.forEach((e, i) => {
      // a body is trimmed when it is JSON and kept whole as a string when it is not (payloadFromBody)
      expect(e.json).toBe(encodeEvent('gw-7', 100 + i, 1_700_000_000_000 + i, events[i]));
      expect(e.topic).toBe(events[i].topic);
      expect(e.kind).toBe(events[i].kind ?? 'reading');
    });
    expect(JSON.parse(chunk.events[3].json).deviceTs).toBe(99);
    expect(JSON.parse(chunk.events[0].json).deviceTs).toBeUndefined();
  });

  it('keeps a body that is not UTF-8 byte-exact and serves it as base64 with payloadEncoding', () => {
    const bytes = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28, 0x41, 0x0a, 0xed, 0xa0, 0x80]);
    const events: EventInput[] = [
      { source: 'mqtt', topic: 'bin/ü', payload: undefined, body: bytes },
      { source: 'mqtt', topic: 'txt', payload: undefined, body: Buffer.from('{"v":2}') },
      { source: 'mqtt', topic: 'empty', payload: undefined, body: Buffer.alloc(0) },
    ];
    const chunk = roundTrip(events);
    const wire = chunk.events.map((e) => JSON.parse(e.json));
    expect(Buffer.from(wire[0].payload, 'base64').equals(bytes)).toBe(true);
    expect(wire[0].payloadEncoding).toBe('base64');
    expect(wire[0].topic).toBe('bin/ü');
    expect(wire[1]).toMatchObject({ payload: { v: 2 } });
    expect(wire[1]).not.toHaveProperty('payloadEncoding');
    expect(wire[2]).not.toHaveProperty('payloadEncoding');
  });

  it('keeps a binary MQTT 5 body byte-exact behind its properties (a newline byte in the body too)', () => {
    const bytes = Buffer.from([0xff, 0x0a, 0x00, 0xc3, 0x28, 0x0a, 0xfe]);
    const events: EventInput[] = [{ source: 'mqtt', topic: 'bin/5', payload: undefined, body: bytes, userProperties: { k: 'v' }, contentType: 'application/cbor' }];
    const [wire] = roundTrip(events).events.map((e) => JSON.parse(e.json));
    expect(Buffer.from(wire.payload, 'base64').equals(bytes)).toBe(true);
    expect(wire).toMatchObject({ payloadEncoding: 'base64', userProperties: { k: 'v' }, contentType: 'application/cbor' });
  });

  it('keeps MQTT 5 user properties and content type with the event, the payload unchanged', () => {
    const events: EventInput[] = [
      { source: 'mqtt', topic: 'a/b', payload: undefined, body: Buffer.from('{"v":1}'), userProperties: { site: 'north', tag: ['a', 'b\n'] }, contentType: 'application/json' },
      { source: 'mqtt', topic: 'a/c', payload: undefined, body: Buffer.from('line1\nline2'), contentType: 'text/plain' },
      { source: 'mqtt', topic: 'a/d', payload: undefined, body: Buffer.from('3') },
    ];
    const chunk = roundTrip(events);
    const wire = chunk.events.map((e) => JSON.parse(e.json));
    expect(wire[0]).toMatchObject({ payload: { v: 1 }, userProperties: { site: 'north', tag: ['a', 'b\n'] }, contentType: 'application/json' });
    expect(wire[1]).toMatchObject({ payload: 'line1\nline2', contentType: 'text/plain' });
    expect(wire[1].userProperties).toBeUndefined();
    expect(wire[2]).not.toHaveProperty('contentType');
    chunk.events.forEach((e, i) => expect(e.json).toBe(encodeEvent('gw-7', 100 + i, 1_700_000_000_000 + i, events[i])));
  });

  it('marks events stamped by an unsynced clock', () => {
    const b = new ChunkBuilder('g');
    b.add(1, 5, KIND_CODE.reading | UNSYNCED, { source: 's', topic: 't', payload: 1 });
    b.add(2, 6, KIND_CODE.reading, { source: 's', topic: 't', payload: 2 });
    const decoded = decodeChunk(b.build(1));
    expect(decoded.events.map((e) => e.unsynced)).toEqual([true, false]);
    expect(JSON.parse(wireChunk(decoded).events[0].json).clockUnsynced).toBe(true);
  });

  it('corrects the ts of unsynced events from the boot that stamped them, before encoding', () => {
    const b = new ChunkBuilder('g');
    b.add(1, 5, KIND_CODE.reading | UNSYNCED, { source: 's', topic: 't', payload: 1 });
    b.add(2, 1_700_000_000_000, KIND_CODE.reading, { source: 's', topic: 't', payload: 2 });
    const decoded = decodeChunk(b.build(9));
    const fixed = wireChunk(decoded, { '9': 1_000 });
    expect(fixed.events.map((e) => e.ts)).toEqual([1005, 1_700_000_000_000]);
    expect(fixed.events[0].json).toBe(encodeEvent('g', 1, 1005, { source: 's', topic: 't', payload: 1 }, true));
    expect(wireChunk(decoded, { '8': 1_000 }).events[0].ts).toBe(5);
  });

  it('refuses a source longer than 255 bytes without taking the event', () => {
    const b = new ChunkBuilder('g');
    expect(() => b.add(1, 5, 0, { source: 'x'.repeat(300), topic: 't', payload: 1 })).toThrow(/255 bytes/);
    expect(b.count).toBe(0);
    b.add(1, 5, 0, { source: 's', topic: 't', payload: 1 });
    expect(decodeChunk(b.build(1)).events).toHaveLength(1);
  });

  it('detects a flipped byte', () => {
    const b = new ChunkBuilder('g');
    b.add(1, 5, 0, { source: 's', topic: 't', payload: 1 });
    const buf = b.build(1);
    buf[buf.length - 30] ^= 1;
    expect(() => decodeChunk(buf)).toThrow(ChunkCorruptError);
  });

  it('still reads version 2 chunks (whole envelopes)', () => {
    const json = encodeEvent('old', 7, 1000, { source: 'mqtt', topic: 't/1', payload: { a: 1 } });
    const text = Buffer.from(`t/1${json}`);
    const buf = Buffer.alloc(25 + text.length + 21);
    buf[0] = 2;
    buf.writeUInt32LE(1, 5);
    buf.writeDoubleLE(7, 9);
    buf.writeUInt32LE(3, 17);
    buf.writeUInt32LE(text.length, 21);
    text.copy(buf, 25);
    const o = 25 + text.length;
    buf.writeUInt32LE(0, o);
    buf.writeDoubleLE(1000, o + 4);
    buf[o + 12] = 0;
    buf.writeUInt32LE(3, o + 13);
    buf.writeUInt32LE(json.length, o + 17);
    buf.writeUInt32LE(crc32(buf.subarray(5)), 1);
    const chunk = wireChunk(decodeChunk(buf));
    expect(chunk.events).toEqual([{ seq: 7, ts: 1000, kind: 'reading', topic: 't/1', json }]);
  });
});
