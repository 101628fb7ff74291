/** What a CONNECT is told when its login or its will is refused (MQTT 3.1.1 CONNACK codes). */
import type { LoginResult } from '../auth/logins.js';

/** CONNACK code and one sentence for a refused login. */
export function loginRefusal(result: Exclude<LoginResult, { ok: true }>): { code: 3 | 4 | 5; message: string } {
  switch (result.reason) {
    case 'auth_busy':
      return { code: 3, message: 'login refused: too many logins are being checked; try again shortly' };
    case 'auth_rate_limited':
      return {
        code: 5,
        message:
          result.limit === 'address'
            ? 'login refused: too many failed logins from this address; try again in a minute'
            : 'login refused: too many failed logins for this username; try again in a minute',
      };
    default:
      return { code: 4, message: 'login refused: bad username or password' };
  }
}

/**
 * A will is published on the client's behalf when it goes away, possibly after the broker forgot
 * who it was: it must pass the publish checks at CONNECT (as Mosquitto checks will ACLs).
 */
export function willAllowed(
  will: { topic: string; payload?: Buffer | string },
  mayPublish: (topic: string) => boolean,
  maxPayloadBytes: number,
): boolean {
  const topic = will.topic;
  if (topic.startsWith('$') || topic.includes('\u0000') || topic.includes('\ufffd')) return false;
  if ((will.payload?.length ?? 0) > maxPayloadBytes) return false;
  return mayPublish(topic);
}
