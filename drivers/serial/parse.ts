/**
 * Framing and parsing of what a serial device prints. Pure code, no I/O: the framer cuts a byte
 * stream into records at a delimiter with a hard length limit (bounded memory whatever the line
 * sends), and each format's parser turns one record into readings or into a rejection with a reason
 * (`garbage`, `no-match`, `malformed`, `bad-json`, `checksum`) that the driver counts. A parser never
 * throws.
 */

export interface ParsedReading {
  topic: string;
  payload: unknown;
  deviceTs?: number;
}

export type ParseResult =
  | { ok: true; readings: ParsedReading[] }
  | { ok: false; reason: string; message: string }
  /** A valid record the format does not turn into readings (an NMEA GSV sentence). */
  | { ok: 'ignored' };

/** Cuts a byte stream into records. Records longer than `maxBytes` are dropped and counted. */
export class LineFramer {
  private pending: Buffer = Buffer.alloc(0);
  /** Dropping the rest of an over-long record, up to its delimiter. */
  private discarding = false;
  tooLong = 0;

  constructor(
    private readonly delimiter: Buffer,
    private readonly maxBytes: number,
  ) {}

  push(chunk: Buffer): Buffer[] {
    const records: Buffer[] = [];
    let buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    for (;;) {
      const at = buf.indexOf(this.delimiter);
      if (at < 0) break;
      const record = buf.subarray(0, at);
      buf = buf.subarray(at + this.delimiter.length);
      if (this.discarding) {
        this.discarding = false;
        continue;
      }
      if (record.length > this.maxBytes) {
        this.tooLong++;
        continue;
      }
      records.push(record);
    }
    if (buf.length > this.maxBytes) {
      // No delimiter within the limit: drop what we have and everything up to the next delimiter.
      if (!this.discarding) this.tooLong++;
      this.discarding = true;
      buf = Buffer.alloc(0);
    }
    // Copy, so the pending tail does not pin the (possibly large) chunk it was cut from.
    this.pending = Buffer.from(buf);
    return records;
  }

  /** Drops a partial record (the port closed: what follows a reopen is a new stream). */
  reset(): void {
    this.pending = Buffer.alloc(0);
    this.discarding = false;
  }
}

/** The record as text, or why it is not text (binary noise from a wrong baud rate or a replug). */
export function recordText(record: Buffer): { text: string } | { reason: string; message: string } {
  let end = record.length;
  if (end > 0 && record[end - 1] === 0x0d) end--; // CR of a CRLF
  const text = record.subarray(0, end).toString('utf8');
  // Control characters (other than tab) and invalid UTF-8 do not occur in what a device prints.
  if (/[\u0000-\u0008\u000a-\u001f\u007f\ufffd]/.test(text)) {
    return { reason: 'garbage', message: `line with binary bytes: ${JSON.stringify(text.slice(0, 40))}` };
  }
  return { text };
}

function scalar(v: string): number | string | boolean {
  const t = v.trim();
  if (t !== '' && /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t)) return Number(t);
  if (t === 'true' || t === 'false') return t === 'true';
  return t;
}

/** A device time from a `ts` field: epoch seconds or ms, or an ISO 8601 string. */
export function deviceTime(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v < 1e11 ? Math.round(v * 1000) : Math.round(v);
  if (typeof v === 'string') {
    const n = Number(v);
    if (v.trim() !== '' && Number.isFinite(n)) return deviceTime(n);
    const ms = Date.parse(v);
    return Number.isNaN(ms) ? undefined : ms;
  }
  return undefined;
}

function reading(topic: string, value: unknown, unit: string | undefined): ParsedReading {
  return { topic, payload: unit === undefined ? { value } : { value, unit } };
}

/** `lines` format: a regex with named groups, one reading per group (`ts` is the device time). */
export function regexParser(
  pattern: string,
  topic: string,
  units: Record<string, string>,
): (text: string) => ParseResult {
  const re = new RegExp(pattern);
  return (text) => {
    const m = re.exec(text);
    if (!m?.groups)
      return {
        ok: false,
        reason: 'no-match',
        message: `line does not match the pattern: ${JSON.stringify(text.slice(0, 80))}`,
      };
    const names = Object.keys(m.groups).filter((k) => m.groups?.[k] !== undefined && k !== 'ts');
    const deviceTs = m.groups.ts !== undefined ? deviceTime(m.groups.ts) : undefined;
    // A single group named `value` is the reading of the topic itself.
    const readings = names.map((k) =>
      reading(names.length === 1 && k === 'value' ? topic : `${topic}/${k}`, scalar(m.groups?.[k] ?? ''), units[k]),
    );
    if (deviceTs !== undefined) for (const r of readings) r.deviceTs = deviceTs;
    return readings.length
      ? { ok: true, readings }
      : { ok: false, reason: 'no-match', message: 'the pattern matched no group' };
  };
}

/**
 * `lines` format without a pattern: `key=value` (or `key:value`) pairs separated by spaces, commas or
 * semicolons, one reading per key; or a bare number, the reading of the topic (unit `units.value`).
 */
export function keyValueParser(topic: string, units: Record<string, string>): (text: string) => ParseResult {
  return (text) => {
    const tokens = text
      .trim()
      .split(/[\s,;]+/)
      .filter(Boolean);
    if (tokens.length === 0) return { ok: 'ignored' };
    // A device that prints just a number per line: the reading of the topic itself.
    if (tokens.length === 1 && typeof scalar(tokens[0]) === 'number') {
      return { ok: true, readings: [reading(topic, scalar(tokens[0]), units.value)] };
    }
    const readings: ParsedReading[] = [];
    let deviceTs: number | undefined;
    for (const tok of tokens) {
      const m = /^([A-Za-z_][\w.-]*)[=:](.+)$/.exec(tok);
      if (!m) return { ok: false, reason: 'no-match', message: `"${tok.slice(0, 40)}" is not a key=value pair` };
      if (m[1] === 'ts') deviceTs = deviceTime(m[2]);
      else readings.push(reading(`${topic}/${m[1]}`, scalar(m[2]), units[m[1]]));
    }
    if (deviceTs !== undefined) for (const r of readings) r.deviceTs = deviceTs;
    return { ok: true, readings };
  };
}

/** `json-lines` format: each line one JSON value, the payload as is; a numeric or ISO `ts` field is the device time. */
export function jsonLineParser(topic: string): (text: string) => ParseResult {
  return (text) => {
    if (text.trim() === '') return { ok: 'ignored' };
    let payload: unknown;
    try {
      payload = JSON.parse(text);
    } catch (err) {
      return { ok: false, reason: 'bad-json', message: `line is not JSON (${(err as Error).message})` };
    }
    const ts =
      payload !== null && typeof payload === 'object' ? deviceTime((payload as Record<string, unknown>).ts) : undefined;
    return { ok: true, readings: [ts === undefined ? { topic, payload } : { topic, payload, deviceTs: ts }] };
  };
}

/** An NMEA sentence from its body (between `$` and `*`), with its checksum: for tests and simulators. */
export function nmeaSentence(body: string): string {
  let sum = 0;
  for (let i = 0; i < body.length; i++) sum ^= body.charCodeAt(i);
  return `$${body}*${sum.toString(16).toUpperCase().padStart(2, '0')}`;
}

/**
 * `nmea` format: GGA (fix) and RMC (recommended minimum) sentences of any talker (GP, GN, GL, ...),
 * checksum verified. Each quantity is one reading `{value, unit}` at `<topic>/<quantity>`: from GGA
 * `fix` (quality 0-8; `quality: "bad"` without a fix), `satellites`, and with a fix `lat`, `lon`
 * (deg), `altitude` (m), `hdop`; from RMC with a valid fix `speed` (kn), `course` (deg), and `lat`,
 * `lon` when the receiver sends no GGA. `deviceTs` is the satellite time (RMC gives the date; GGA
 * only the time of day, dated by the last RMC or the gateway's clock); the readings of one sentence
 * share it, which pairs a `lat` with its `lon`.
 */
export class NmeaParser {
  /** UTC midnight (epoch ms) of the last RMC date seen. */
  private lastDate?: number;
  /** When the last GGA arrived (gateway clock). */
  private lastGga?: number;

  constructor(
    private readonly topic: string,
    private readonly now: () => number = Date.now,
  ) {}

  parse(text: string): ParseResult {
    const line = text.trim();
    if (line === '') return { ok: 'ignored' };
    if (line[0] !== '$' && line[0] !== '!')
      return { ok: false, reason: 'garbage', message: `not an NMEA sentence: ${JSON.stringify(line.slice(0, 40))}` };
    const star = line.lastIndexOf('*');
    if (star < 0 || star !== line.length - 3)
      return { ok: false, reason: 'checksum', message: `sentence without a checksum: ${line.slice(0, 20)}` };
    let sum = 0;
    for (let i = 1; i < star; i++) sum ^= line.charCodeAt(i);
    const given = Number.parseInt(line.slice(star + 1), 16);
    if (Number.isNaN(given) || given !== sum) {
      return {
        ok: false,
        reason: 'checksum',
        message: `bad checksum ${line.slice(star + 1)} (computed ${sum.toString(16).toUpperCase().padStart(2, '0')}) in ${line.slice(0, 20)}`,
      };
    }
    const f = line.slice(1, star).split(',');
    const kind = f[0].slice(-3);
    if (kind === 'GGA') return this.gga(f);
    if (kind === 'RMC') return this.rmc(f);
    return { ok: 'ignored' };
  }

  private gga(f: string[]): ParseResult {
    if (f.length < 10) return malformed('GGA', `${f.length} fields`);
    const fix = Number(f[6] || '0');
    const lat = coordinate(f[2], f[3], 2);
    const lon = coordinate(f[4], f[5], 3);
    const tod = timeOfDay(f[1]);
    if (lat === undefined || lon === undefined || Number.isNaN(fix) || tod === undefined)
      return malformed('GGA', 'bad field');
    this.lastGga = this.now();
    const out = new Readings(this.topic, tod === null ? undefined : this.dateTime(tod));
    // Fix quality: 0 none, 1 GPS, 2 DGPS, 4 RTK fixed, 5 RTK float, 6 dead reckoning.
    out.add('fix', fix, undefined, fix === 0 || lat === null);
    out.add('satellites', optionalNumber(f[7]));
    if (fix > 0 && lat !== null && lon !== null) {
      out.add('lat', lat, 'deg');
      out.add('lon', lon, 'deg');
      out.add('altitude', optionalNumber(f[9]), 'm');
      out.add('hdop', optionalNumber(f[8]));
    }
    return { ok: true, readings: out.list };
  }

  private rmc(f: string[]): ParseResult {
    if (f.length < 10) return malformed('RMC', `${f.length} fields`);
    const tod = timeOfDay(f[1]);
    const lat = coordinate(f[3], f[4], 2);
    const lon = coordinate(f[5], f[6], 3);
    const date = /^(\d{2})(\d{2})(\d{2})$/.exec(f[9]);
    if (tod === undefined || lat === undefined || lon === undefined || (f[9] !== '' && !date))
      return malformed('RMC', 'bad field');
    let deviceTs: number | undefined;
    if (date) {
      // Two-digit years, pivoting at 1980 (the GPS epoch).
      const yy = Number(date[3]);
      const midnight = Date.UTC(yy < 80 ? 2000 + yy : 1900 + yy, Number(date[2]) - 1, Number(date[1]));
      if (!Number.isNaN(midnight)) {
        this.lastDate = midnight;
        if (tod !== null) deviceTs = midnight + tod;
      }
    }
    // Status V (void): the receiver has no valid fix; its position and motion are not readings.
    if (f[2] !== 'A' || lat === null || lon === null) return { ok: 'ignored' };
    const out = new Readings(this.topic, deviceTs);
    // A receiver that also sends GGA reports the position there (with altitude and fix quality):
    // taking it from both would report every position twice.
    if (this.lastGga === undefined || this.now() - this.lastGga > GGA_FRESH_MS) {
      out.add('lat', lat, 'deg');
      out.add('lon', lon, 'deg');
    }
    out.add('speed', optionalNumber(f[7]), 'kn');
    out.add('course', optionalNumber(f[8]), 'deg');
    return out.list.length ? { ok: true, readings: out.list } : { ok: 'ignored' };
  }

  /** A GGA time of day on the last RMC date, or on the gateway's date, taking the nearer midnight. */
  private dateTime(tod: number): number {
    const now = this.now();
    let midnight = this.lastDate ?? Math.floor(now / 86_400_000) * 86_400_000;
    if (this.lastDate === undefined) {
      // 23:59:59 from the GPS at 00:00:01 on the gateway's clock is yesterday.
      if (midnight + tod - now > 43_200_000) midnight -= 86_400_000;
      else if (now - (midnight + tod) > 43_200_000) midnight += 86_400_000;
    }
    return midnight + tod;
  }
}

/** A GGA within this long means the receiver sends GGA: RMC then adds motion only. */
const GGA_FRESH_MS = 5000;

/** Readings of one sentence, `{value, unit}` each (the contract's reading shape), sharing its time. */
class Readings {
  readonly list: ParsedReading[] = [];
  constructor(
    private readonly topic: string,
    private readonly deviceTs: number | undefined,
  ) {}

  add(quantity: string, value: number | null, unit?: string, bad = false): void {
    if (value === null) return;
    const payload: Record<string, unknown> = { value };
    if (unit !== undefined) payload.unit = unit;
    if (bad) payload.quality = 'bad';
    this.list.push({ topic: `${this.topic}/${quantity}`, payload, ...(this.deviceTs !== undefined ? { deviceTs: this.deviceTs } : {}) });
  }
}

function malformed(kind: string, why: string): ParseResult {
  return { ok: false, reason: 'malformed', message: `malformed ${kind} sentence (${why})` };
}

function optionalNumber(s: string | undefined): number | null {
  if (s === undefined || s === '') return null;
  const n = Number(s);
  return Number.isFinite(n) ? n : null;
}

/** `ddmm.mmmm` / `dddmm.mmmm` with hemisphere → signed degrees; null when empty (no fix), undefined when malformed. */
function coordinate(v: string | undefined, hemi: string | undefined, degDigits: number): number | null | undefined {
  if (!v) return null;
  if (!(degDigits === 2 ? /^\d{4}(\.\d+)?$/ : /^\d{5}(\.\d+)?$/).test(v)) return undefined;
  const deg = Number(v.slice(0, degDigits));
  const min = Number(v.slice(degDigits));
  if (!(min < 60)) return undefined;
  const value = deg + min / 60;
  if (hemi === 'S' || hemi === 'W') return -Number(value.toFixed(7));
  if (hemi === 'N' || hemi === 'E') return Number(value.toFixed(7));
  return undefined;
}

/** `hhmmss(.sss)` → ms since midnight; null when empty, undefined when malformed. */
function timeOfDay(v: string | undefined): number | null | undefined {
  if (!v) return null;
  const m = /^(\d{2})(\d{2})(\d{2}(?:\.\d+)?)$/.exec(v);
  if (!m) return undefined;
  const [h, min, s] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (h > 23 || min > 59 || s >= 61) return undefined;
  return Math.round(((h * 60 + min) * 60 + s) * 1000);
}
