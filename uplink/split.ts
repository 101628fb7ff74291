/**
 * Halving a batch the peer cannot take whole (a message-size limit, HTTP 413): each half is sent on
 * its own, with its own batchId, recursively; the halves' results are mapped back to the indices of
 * the original batch. A half that must wait (retry) makes the rest wait too, so order holds.
 */
import { type Batch, batchIdOf, type SendResult } from './sink.js';

export async function sendInHalves(
  batch: Batch,
  send: (half: Batch) => Promise<SendResult>,
  whenSingle: () => SendResult,
): Promise<SendResult> {
  if (batch.events.length === 1) return whenSingle();
  const mid = Math.ceil(batch.events.length / 2);
  const out: SendResult = { accepted: [], rejected: [], retry: [], bytes: 0 };
  for (const [offset, events] of [
    [0, batch.events.slice(0, mid)],
    [mid, batch.events.slice(mid)],
  ] as const) {
    let r: SendResult;
    try {
      r = await send({ gateway: batch.gateway, batchId: batchIdOf(events), events });
    } catch (err) {
      r = { accepted: [], rejected: [], retry: events.map((_, i) => i), error: (err as Error).message };
    }
    out.accepted.push(...r.accepted.map((i) => i + offset));
    out.rejected.push(...r.rejected.map((i) => i + offset));
    out.retry.push(...r.retry.map((i) => i + offset));
    out.bytes = (out.bytes ?? 0) + (r.bytes ?? 0);
    if (r.error) out.error = r.error;
    if (r.retryAfterMs !== undefined) out.retryAfterMs = Math.max(out.retryAfterMs ?? 0, r.retryAfterMs);
    if (offset === 0 && r.retry.length > 0) {
      out.retry.push(...batch.events.slice(mid).map((_, i) => i + mid));
      break;
    }
  }
  return out;
}
