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
    expect(keyValueParser('s', { value: 'mm' })(' -3.25 ')).toEqual({ ok: true, readings: [{ topic: 's', payload: { value: -3.25, unit: 'mm' } }] });
    expect(p('hello')).toMatchObject({ ok: false, reason: 'no-match' });
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

  it('reads GGA as one {value, unit} reading per quantity, dated by the last RMC; RMC adds motion', () => {
    let now = Date.UTC(2025, 0, 1);
    const p = new NmeaParser('gps', () => now);
    const ts = Date.UTC(1994, 2, 23, 12, 35, 19);
    // No GGA seen yet: RMC gives the position too.
    expect(p.parse(rmc)).toEqual({
      ok: true,
      readings: [
        { topic: 'gps/lat', payload: { value: 48.1173, unit: 'deg' }, deviceTs: ts },
        { topic: 'gps/lon', payload: { value: 11.5166667, unit: 'deg' }, deviceTs: ts },
        { topic: 'gps/speed', payload: { value: 22.4, unit: 'kn' }, deviceTs: ts },
        { topic: 'gps/course', payload: { value: 84.4, unit: 'deg' }, deviceTs: ts },
      ],
    });
    expect(p.parse(gga)).toEqual({
      ok: true,
      readings: [
        { topic: 'gps/fix', payload: { value: 1 }, deviceTs: ts },
        { topic: 'gps/satellites', payload: { value: 8 }, deviceTs: ts },
        { topic: 'gps/lat', payload: { value: 48.1173, unit: 'deg' }, deviceTs: ts },
        { topic: 'gps/lon', payload: { value: 11.5166667, unit: 'deg' }, deviceTs: ts },
        { topic: 'gps/altitude', payload: { value: 545.4, unit: 'm' }, deviceTs: ts },
        { topic: 'gps/hdop', payload: { value: 0.9 }, deviceTs: ts },
      ],
    });
    // The receiver sends GGA: RMC no longer repeats the position.
    const r = p.parse(rmc);
    expect(r.ok === true && r.readings.map((x) => x.topic)).toEqual(['gps/speed', 'gps/course']);
    now += 10_000;
    const later = p.parse(rmc);
    expect(later.ok === true && later.readings.map((x) => x.topic)).toEqual(['gps/lat', 'gps/lon', 'gps/speed', 'gps/course']);
  });

  it('dates a GGA by the gateway clock, across midnight', () => {
    const p = new NmeaParser('gps', () => Date.UTC(2025, 5, 2, 0, 0, 1));
    const late = nmea('GPGGA,235959,4807.038,S,01131.000,W,1,08,0.9,545.4,M,46.9,M,,');
    const r = p.parse(late);
    expect(r.ok === true && r.readings.find((x) => x.topic === 'gps/lat')).toEqual({
      topic: 'gps/lat',
      payload: { value: -48.1173, unit: 'deg' },
      deviceTs: Date.UTC(2025, 5, 1, 23, 59, 59),
    });
    expect(r.ok === true && r.readings.find((x) => x.topic === 'gps/lon')?.payload).toEqual({ value: -11.5166667, unit: 'deg' });
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

  it('without a fix: fix 0 with quality bad, no position; a void RMC is no reading', () => {
    const r = new NmeaParser('gps').parse(nmea('GPGGA,123519,,,,,0,00,,,M,,M,,'));
    expect(r.ok === true && r.readings.map((x) => [x.topic, x.payload])).toEqual([
      ['gps/fix', { value: 0, quality: 'bad' }],
      ['gps/satellites', { value: 0 }],
    ]);
    expect(new NmeaParser('gps').parse(nmea('GPRMC,123519,V,,,,,,,230394,,'))).toEqual({ ok: 'ignored' });
  });
});
