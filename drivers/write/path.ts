/**
 * The one path every write to a device takes, whoever asks (a local MQTT client, a signed fleet
 * command, an analytics rule): the point must be declared `writable` in the config, the value must
 * fit its limits (type, min/max, allowed values) and rate limit, and its device must not be down;
 * only then does the driver write it (once, never retried: a write that timed out may have been
 * applied), and with `verify` read it back.
 *
 * Every attempt ends in one `audit` event (kind `audit`, the ring log's priority lane) on
 * `sluice/audit/write/<driver>/<point>`, naming the driver, point, value, outcome (`accepted`,
 * `verified`, `refused`, `failed`), requester and reason; the result is returned once that event is
 * durable. Nothing is queued to fire later, except when a point's `queueFor` asks: then a write to a
 * device that is down waits up to that long (one per point; a newer one replaces it).
 */
import type { EventInput } from '../../src/core/event.js';
import type { Driver, WritablePoint } from '../driver.js';
import type { WritableSpec, WriteValue } from './schema.js';

export interface WriteRequest {
  driver: string;
  point: string;
  value: unknown;
  /** Why the requester writes (shown in the audit event). */
  reason?: string;
  /** Who asks: `mqtt:<user or client id>`, `fleet:<command id>`, `analytics:<rule>`. */
  requester: string;
}

export type WriteOutcomeKind = 'accepted' | 'verified' | 'refused' | 'failed';

export interface WriteResult {
  ok: boolean;
  outcome: WriteOutcomeKind;
  error?: string;
  readBack?: unknown;
}

export interface WritePathDeps {
  driver(name: string): Driver | undefined;
  /** Appends the audit event; resolves when it is durable. */
  audit(event: EventInput): Promise<unknown>;
  /** Longest a driver's write (and read-back) may take. */
  timeoutMs?: number;
}

const WAIT_POLL_MS = 100;

export class WritePath {
  private readonly lastAt = new Map<string, number>();
  private readonly waiting = new Map<string, () => void>();
  readonly counts: Record<WriteOutcomeKind, number> = { accepted: 0, verified: 0, refused: 0, failed: 0 };

  constructor(private readonly deps: WritePathDeps) {}

  async write(req: WriteRequest): Promise<WriteResult> {
    const found = this.find(req);
    const result = 'error' in found ? refused(found.error) : await this.attempt(req, found.driver, found.point);
    this.counts[result.outcome]++;
    await this.deps
      .audit(auditEvent(req, result, 'point' in found ? found.point.device : undefined))
      .catch(() => undefined);
    return result;
  }

  /** Refuses a request before looking at it (malformed, too many at once), with its audit event. */
  async refuse(req: WriteRequest, error: string): Promise<WriteResult> {
    const result = refused(error);
    this.counts.refused++;
    await this.deps.audit(auditEvent(req, result, undefined)).catch(() => undefined);
    return result;
  }

  private find(req: WriteRequest): { driver: Driver; point: WritablePoint } | { error: string } {
    const driver = this.deps.driver(req.driver);
    if (!driver) return { error: `no driver named "${req.driver}"` };
    if (!driver.write || !driver.writablePoints) return { error: `driver "${req.driver}" (${driver.type}) cannot write` };
    const point = driver.writablePoints().find((p) => p.point === req.point);
    if (!point) return { error: `point "${req.point}" of driver "${req.driver}" is not declared writable` };
    return { driver, point };
  }

  private async attempt(req: WriteRequest, driver: Driver, wp: WritablePoint): Promise<WriteResult> {
    const problem = valueProblem(wp.writable, req.value);
    if (problem) return refused(`value ${JSON.stringify(req.value)} refused for ${req.driver}/${req.point}: ${problem}`);
    const key = `${req.driver}\u0000${req.point}`;
    const spec = wp.writable;
    const now = Date.now();
    const last = this.lastAt.get(key);
    if (spec.minInterval > 0 && last !== undefined && now - last < spec.minInterval)
      return refused(`${req.driver}/${req.point} was written ${now - last} ms ago; at most one write per ${spec.minInterval} ms`);
    const down = deviceDown(driver, wp.device);
    if (down) {
      if (spec.queueFor === 0) return failed(`${down}; the write was not sent`);
      const waited = await this.waitUp(key, driver, wp.device, spec.queueFor);
      if (waited !== 'up') return waited === 'superseded' ? refused('replaced by a newer write to the same point') : failed(`${down} and did not come back within ${spec.queueFor} ms; the write was not sent`);
    }
    this.lastAt.set(key, Date.now());
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeoutMs = this.deps.timeoutMs ?? 30_000;
      const out = await Promise.race([
        driver.write!(req.point, req.value as WriteValue, spec.verify),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      if (!spec.verify) return { ok: true, outcome: 'accepted' };
      if (!sameValue(out.readBack, req.value))
        return { ok: false, outcome: 'failed', error: `wrote ${JSON.stringify(req.value)} but read back ${JSON.stringify(out.readBack)}`, readBack: out.readBack };
      return { ok: true, outcome: 'verified', readBack: out.readBack };
    } catch (err) {
      return failed((err as Error).message);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Waits for the device to leave `down`, up to `ms`; a newer wait for the same point ends this one. */
  private waitUp(key: string, driver: Driver, device: string, ms: number): Promise<'up' | 'expired' | 'superseded'> {
    this.waiting.get(key)?.();
    return new Promise((resolve) => {
      const deadline = Date.now() + ms;
      let timer: NodeJS.Timeout;
      const done = (r: 'up' | 'expired' | 'superseded') => {
        clearTimeout(timer);
        if (this.waiting.get(key) === cancel) this.waiting.delete(key);
        resolve(r);
      };
      const cancel = () => done('superseded');
      this.waiting.set(key, cancel);
      const check = () => {
        if (!deviceDown(driver, device)) done('up');
        else if (Date.now() >= deadline) done('expired');
        else timer = setTimeout(check, WAIT_POLL_MS);
      };
      timer = setTimeout(check, WAIT_POLL_MS);
    });
  }
}

function refused(error: string): WriteResult {
  return { ok: false, outcome: 'refused', error };
}

function failed(error: string): WriteResult {
  return { ok: false, outcome: 'failed', error };
}

/** Why the device cannot take a write now, or undefined. */
function deviceDown(driver: Driver, device: string): string | undefined {
  const d = driver.health().devices.find((x) => x.device === device);
  if (!d) return `device ${device} of ${driver.name} is not running`;
  if (d.state === 'down' || d.state === 'stopped')
    return `device ${device} of ${driver.name} is ${d.state}${d.lastError ? ` (${d.lastError})` : ''}`;
  return undefined;
}

/** What is wrong with a value under a point's limits, or undefined. */
export function valueProblem(spec: WritableSpec, value: unknown): string | undefined {
  const items = Array.isArray(value) ? value : [value];
  if (Array.isArray(value) && value.length === 0) return 'an empty array';
  if (Array.isArray(value) && value.length > 10_000) return 'more than 10000 values';
  for (const v of items) {
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) return 'not a finite number';
      if (spec.min !== undefined && v < spec.min) return `below the minimum ${spec.min}`;
      if (spec.max !== undefined && v > spec.max) return `above the maximum ${spec.max}`;
    } else if (typeof v === 'string') {
      if (v.length > 4096) return 'a string longer than 4096 characters';
      if (spec.min !== undefined || spec.max !== undefined) return 'not a number (the point has min/max)';
    } else if (typeof v !== 'boolean') return 'not a number, boolean or string';
    if (spec.allowed && !spec.allowed.includes(v)) return `not one of the allowed values ${JSON.stringify(spec.allowed)}`;
  }
  return undefined;
}

/** Equal, with a float32 register's rounding (about 7 significant digits) forgiven. */
function sameValue(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' && typeof b === 'number') return a === b || Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b));
  return JSON.stringify(a) === JSON.stringify(b);
}

export function auditTopic(driver: string, point: string): string {
  return `sluice/audit/write/${driver}/${point}`;
}

function auditEvent(req: WriteRequest, r: WriteResult, device: string | undefined): EventInput {
  // Names from the request go into a topic only when they are plain names (no MQTT wildcards or levels).
  const safe = (s: string) => (/^[A-Za-z0-9_.-]{1,64}$/.test(s) ? s : '_invalid');
  return {
    source: 'write',
    kind: 'audit',
    topic: auditTopic(safe(req.driver), safe(req.point)),
    payload: {
      action: 'write',
      driver: req.driver,
      point: req.point,
      ...(device ? { device } : {}),
      value: req.value === undefined ? null : req.value,
      outcome: r.outcome,
      ok: r.ok,
      requester: req.requester,
      reason: req.reason ?? null,
      ...(r.error ? { error: r.error } : {}),
      ...(r.readBack !== undefined ? { readBack: r.readBack } : {}),
    },
  };
}
