/** What the Event Hubs uplink says about AMQP failures, and which of them are worth retrying. */
import type { EventContext } from 'rhea';

/** Rejection conditions that mean "not now", not "never": retried. */
const TRANSIENT = new Set([
  'com.microsoft:server-busy',
  'com.microsoft:timeout',
  'com.microsoft:operation-cancelled',
  'amqp:resource-limit-exceeded',
  'amqp:internal-error',
  'amqp:unauthorized-access',
  'amqp:link:detach-forced',
  'amqp:connection:forced',
]);

export const isTransient = (condition: string): boolean => TRANSIENT.has(condition);

export function describeAmqpError(e: unknown): string {
  if (e === undefined || e === null) return 'no reason given';
  if (typeof e === 'string') return e;
  const x = e as { condition?: string; description?: string; message?: string };
  return [x.condition, x.description ?? x.message].filter(Boolean).join(': ') || String(e);
}

export function describeDisconnect(ctx: EventContext, host: string, port: number): string {
  const e = (ctx.error ?? ctx.connection?.error) as { code?: string; message?: string; condition?: string } | undefined;
  if (e?.condition === 'amqp:unauthorized-access' || /auth/i.test(e?.message ?? ''))
    return `the peer refused the credentials (${describeAmqpError(e)})`;
  // Refused or unroutable: never connected. A reset or broken pipe: connected, then lost.
  if (e?.code && /^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT)$/.test(e.code))
    return `cannot reach ${host}:${port} (${e.code})`;
  if (e?.code) return `lost the connection to ${host}:${port} (${e.code})`;
  return `lost the connection to ${host}:${port}${e ? ` (${describeAmqpError(e)})` : ''}`;
}
