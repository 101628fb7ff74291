import { describe, expect, it } from 'vitest';
import {
  jsonLineParser,
  keyValueParser,
  LineFramer,
  NmeaParser,
  nmeaSentence,
  recordText,
  regexParser,
} from './parse.js';

const nmea = nmeaSentence;

describe('LineFramer', () => {
  it('cuts records across chunks and drops over-long ones without keeping them', () => {
    const f = new LineFramer(Buffer.from('\n'), 10);
    expect(f.push(Buffer.from('ab')).map(String)).toEqual([]);
    expect(f.push(Buffer.from('c\nde\nf')).map(String)).toEqual(['abc', 'de']);
    expect(f.push(Buffer.from('x'.repeat(30))).map(String)).toEqual([]);
    expect(f.push(Buffer.from('yyy\nok\n')).map(String)).toEqual(['ok']);
    expect(f.tooLong).toBe(1);
    expect(f.push(Buffer.from(`${'z'.repeat(11)}\nfine\n`)).map(String)).toEqual(['fine']);
    expect(f.tooLong).toBe(2);
  });

  it('flags binary noise, strips CR', () => {
    expect(recordText(Buffer.from('a=1\r'))).toEqual({ text: 'a=1' });
    expect(recordText(Buffer.from([0x00, 0xff, 0x41]))).toMatchObject({ reason: 'garbage' });
  });
});

describe('lines', () => {
  it('reads named groups with units and a device time', () => {
    const p = regexParser('^T=(?<temp>[-\\d.]+) H=(?<hum>[\\d.]+)(?: @(?<ts>\\d+))?$', 'lab', { temp: '°C' });
    expect(p('T=21.5 H=40 @1700000000')).toEqual({
      ok: true,
      readings: [
        { topic: 'lab/temp', payload: { value: 21.5, unit: '°C' }, deviceTs: 1_700_000_000_000 },
        { topic: 'lab/hum', payload: { value: 40 }, deviceTs: 1_700_000_000_000 },
      ],
    });
    expect(p('T=x')).toMatchObject({ ok: false, reason: 'no-match' });
    expect(regexParser('v=(?<value>\\d+)', 'meter', {})('v=7')).toEqual({
      ok: true,
      readings: [{ topic: 'meter', payload: { value: 7 } }],
    });
  });

  it('reads key=value pairs and refuses broken ones', () => {
    const p = keyValueParser('s', { t: '°C' });
    expect(p('t=21.5, state=ok;n:3')).toEqual({
      ok: true,
      readings: [
        { topic: 's/t', payload: { value: 21.5, unit: '°C' } },
        { topic: 's/state', payload: { value: 'ok' } },
        { topic: 's/n', payload: { value: 3 } },
      ],
    });
    expect(p('t=21.5 garbage')).toMatchObject({ ok: false, reason: 'no-match' });
  });

  it('json-lines: the payload as is, a ts field as device time', () => {
    expect(jsonLineParser('j')('{"a":1,"ts":"2024-01-02T03:04:05Z"}')).toEqual({
      ok: true,
      readings: [
        { topic: 'j', payload: { a: 1, ts: '2024-01-02T03:04:05Z' }, deviceTs: Date.UTC(2024, 0, 2, 3, 4, 5) },
      ],
    });
    expect(jsonLineParser('j')('{"a":')).toMatchObject({ ok: false, reason: 'bad-json' });
  });
});

describe('NMEA', () => {
  const gga = nmea('GPGGA,123519.00,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,');
  const rmc = nmea('GNRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W');

  it('parses RMC with the date and GGA dated by it', () => {
    const p = new NmeaParser('gps');
    expect(p.parse(rmc)).toEqual({
      ok: true,
      readings: [
        {
          topic: 'gps/rmc',
          payload: { lat: 48.1173, lon: 11.5166667, speedKnots: 22.4, course: 84.4, valid: true },
          deviceTs: Date.UTC(1994, 2, 23, 12, 35, 19),
        },
      ],
    });
    expect(p.parse(gga)).toEqual({
      ok: true,
      readings: [
        {
          topic: 'gps/gga',
          payload: { lat: 48.1173, lon: 11.5166667, altitude: 545.4, fix: 1, satellites: 8, hdop: 0.9 },
          deviceTs: Date.UTC(1994, 2, 23, 12, 35, 19),
        },
      ],
    });
  });

  it('dates a GGA by the gateway clock, across midnight', () => {
    const p = new NmeaParser('gps', () => Date.UTC(2025, 5, 2, 0, 0, 1));
    const late = nmea('GPGGA,235959,4807.038,S,01131.000,W,1,08,0.9,545.4,M,46.9,M,,');
    const r = p.parse(late);
    expect(r.ok === true && r.readings[0]).toMatchObject({
      payload: { lat: -48.1173, lon: -11.5166667 },
      deviceTs: Date.UTC(2025, 5, 1, 23, 59, 59),
    });
  });

  it('rejects bad checksums, missing checksums, garbage and malformed fields; ignores other sentences', () => {
    const p = new NmeaParser('gps');
    expect(p.parse(`${gga.slice(0, -2)}00`)).toMatchObject({ ok: false, reason: 'checksum' });
    expect(p.parse(gga.slice(0, -3))).toMatchObject({ ok: false, reason: 'checksum' });
    expect(p.parse('xx$GPGGA')).toMatchObject({ ok: false, reason: 'garbage' });
    expect(p.parse(nmea('GPGGA,1235,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,'))).toMatchObject({
      ok: false,
      reason: 'malformed',
    });
    expect(p.parse(nmea('GPGGA,123519,48x7.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,'))).toMatchObject({
      ok: false,
      reason: 'malformed',
    });
    expect(p.parse(nmea('GPGSV,3,1,11,03,03,111,00,04,15,270,00,06,01,010,00,13,06,292,00'))).toEqual({
      ok: 'ignored',
    });
  });

  it('marks a sentence without a fix as bad quality', () => {
    const r = new NmeaParser('gps').parse(nmea('GPGGA,123519,,,,,0,00,,,M,,M,,'));
    expect(r.ok === true && r.readings[0].payload).toMatchObject({ lat: null, lon: null, fix: 0, quality: 'bad' });
  });
});
