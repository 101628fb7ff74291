import { describe, expect, it } from 'vitest';
import { encodeEvent, isBinaryPayload, payloadFromBody } from './event.js';

describe('payloadFromBody', () => {
  it.each([
    ['21.5', 21.5, '21.5'],
    [' -3e2 ', -300, '-3e2'],
    ['0', 0, '0'],
    ['1e400', Number.POSITIVE_INFINITY, '1e400'],
    ['{"value": 1.5}', { value: 1.5 }, '{"value": 1.5}'],
    ['[1,2]', [1, 2], '[1,2]'],
    ['"hi"', 'hi', '"hi"'],
    ['true', true, 'true'],
    ['null', null, 'null'],
  ])('parses JSON %j', (body, payload, json) => {
    expect(payloadFromBody(Buffer.from(body))).toEqual({ payload, payloadJson: json });
  });

  it.each(['21.5C', '01', '-', '{not json', 'OK', '', 'True', '1.'])('keeps %j as a string', (body) => {
    expect(payloadFromBody(body)).toEqual({ payload: body, payloadJson: JSON.stringify(body) });
  });
});

describe('binary payloads', () => {
  it('keeps a body that is not UTF-8 as bytes, its JSON form the base64 of them', () => {
    const body = Buffer.from([0x80, 0x01, 0xff]);
    const p = payloadFromBody(body);
    expect(isBinaryPayload(p.payload)).toBe(true);
    expect(p).toMatchObject({ payloadJson: '"gAH/"', payloadEncoding: 'base64' });
    expect(isBinaryPayload(payloadFromBody(Buffer.from('21.5')).payload)).toBe(false);
    const env = JSON.parse(encodeEvent('g', 1, 2, { source: 'mqtt', topic: 't', payload: undefined, body }));
    expect(env).toMatchObject({ payload: 'gAH/', payloadEncoding: 'base64' });
  });
});

describe('encodeEvent', () => {
  it('writes the contract envelope with the payload JSON spliced in', () => {
    const json = encodeEvent('gw-01', 42, 1000, { source: 'mqtt', topic: 'a/b', payload: 1, payloadJson: '{"v": 1}', deviceTs: 900 });
    expect(JSON.parse(json)).toEqual({ id: 'gw-01:42', seq: 42, ts: 1000, source: 'mqtt', topic: 'a/b', payload: { v: 1 }, kind: 'reading', deviceTs: 900 });
  });

  it('serialises a payload without JSON text, NaN as null', () => {
    const json = encodeEvent('g', 1, 2, { source: 's', topic: 't"q', payload: { x: Number.NaN }, kind: 'anomaly' }, true);
    expect(JSON.parse(json)).toMatchObject({ topic: 't"q', payload: { x: null }, kind: 'anomaly', clockUnsynced: true });
  });
});
