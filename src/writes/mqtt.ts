/**
 * Write requests over the local broker: a client publishes `{"value": 42, "reason": "..."}` to
 * `sluice/write/<driver>/<point>`, the broker's publish ACL has already decided whether that client
 * may, and the result `{"ok": true|false, "error"?: "..."}` is published on
 * `sluice/write/<driver>/<point>/result`. Requests are not stored as readings (their audit event
 * is the record). A request is handled one at a time per point, at most MAX_IN_FLIGHT at once over
 * all points; more are refused with a result, so a flood cannot queue writes in memory.
 */
import type { Logger } from 'pino';
import type { WritePath, WriteRequest, WriteResult } from '../../drivers/write/path.js';

export const WRITE_TOPIC_PREFIX = 'sluice/write/';
const MAX_IN_FLIGHT = 64;

export interface WriteIntercept {
  matches(topic: string): boolean;
  handle(topic: string, payload: Buffer, requester: string): void;
}

/** `sluice/write/<driver>/<point>` exactly (a `/result` topic is not a request). */
export function writeTarget(topic: string): { driver: string; point: string } | undefined {
  if (!topic.startsWith(WRITE_TOPIC_PREFIX)) return undefined;
  const parts = topic.slice(WRITE_TOPIC_PREFIX.length).split('/');
  if (parts.length !== 2 || !parts[0] || !parts[1]) return undefined;
  return { driver: parts[0], point: parts[1] };
}

/** The request in an MQTT body, or why it is not one. */
export function parseWriteBody(payload: Buffer): { value: unknown; reason?: string } | { error: string } {
  let body: unknown;
  try {
    body = JSON.parse(payload.toString('utf8'));
  } catch {
    return { error: 'the request is not JSON; send {"value": ..., "reason": "..."}' };
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body) || !('value' in body))
    return { error: 'the request has no "value"; send {"value": ..., "reason": "..."}' };
  const { value, reason } = body as { value: unknown; reason?: unknown };
  if (reason !== undefined && typeof reason !== 'string') return { error: '"reason" must be a string' };
  return { value, ...(reason ? { reason: reason.slice(0, 500) } : {}) };
}

export function mqttWrites(
  writes: WritePath,
  publish: (topic: string, payload: string) => Promise<void>,
  logger: Logger,
): WriteIntercept {
  let inFlight = 0;
  const reply = (topic: string, r: Pick<WriteResult, 'ok' | 'error'>) =>
    publish(`${topic}/result`, JSON.stringify({ ok: r.ok, ...(r.error ? { error: r.error } : {}) })).catch((err) =>
      logger.warn({ err: (err as Error).message, topic }, 'write result not published'),
    );
  return {
    matches: (topic) => writeTarget(topic) !== undefined,
    handle(topic, payload, requester) {
      const target = writeTarget(topic)!;
      const parsed = parseWriteBody(payload);
      const req: WriteRequest = {
        ...target,
        value: 'error' in parsed ? null : parsed.value,
        reason: 'error' in parsed ? undefined : parsed.reason,
        requester: `mqtt:${requester}`,
      };
      if ('error' in parsed || inFlight >= MAX_IN_FLIGHT) {
        const error = 'error' in parsed ? parsed.error : 'too many writes in progress; try again';
        // Still audited: a malformed request is an attempt too.
        void writes.refuse(req, error).then((r) => reply(topic, r));
        return;
      }
      inFlight++;
      writes
        .write(req)
        .then((r) => reply(topic, r))
        .finally(() => inFlight--);
    },
  };
}
