/**
 * What a logged-in client may publish and subscribe to (aedes' `authorizeSubscribe` hook, and the
 * checks the publish hook makes before intake).
 *
 * - A publish topic with ill-formed UTF-8 or U+0000 is malformed (MQTT-1.5.3-1/2); `$` topics are
 *   reserved for the broker; a topic outside the user's `publish` filters, or any topic for an
 *   anonymous client where anonymous clients are not allowed, is refused; a payload over
 *   `maxPayloadBytes` is refused, and so is (MQTT 5) a payload flagged UTF-8 by its Payload Format
 *   Indicator that is not. Each refusal is counted by reason.
 * - A subscription is granted only when the user's `subscribe` filters cover every topic it can
 *   match (acl.ts), never to `$SYS`, and within `maxSubscriptionsPerClient`; a refused filter gets
 *   SUBACK 0x80 (MQTT 5: 0x87) and the client stays connected. A shared subscription
 *   (`$share/<group>/<filter>`, shared-subscriptions.ts) is checked on its `<filter>`, and counts as
 *   one subscription; a malformed one is refused (SUBACK 0x8F).
 * - A persistent session keeps only the subscriptions granted. aedes stores, for each filter it
 *   grants, every filter of that SUBSCRIBE packet, refused ones too, and queues for the session
 *   whatever matches a stored filter: a refused `secret/#` sent beside a granted one reached the
 *   client on its next connection (storeGrantedOnly).
 */
import type { Client, Subscription } from 'aedes';
import { isUtf8 } from 'node:buffer';
import mqttPacket from 'mqtt-packet';
import type { Logger } from 'pino';
import { type BrokerPersistence, maximumPacketSizeOf, subscriptionsOf } from './aedes-adapter.js';
import { userOf } from './authenticate.js';
import { sharedFilterOf, shownTopic } from './shared-subscriptions.js';
import { admitSubscription, type SubscribingClient } from './subscription-limit.js';

export interface PublishRefusal {
  /** Counted under this reason. */
  reason: 'malformed_topic' | 'acl_publish' | 'oversize' | 'payload_format';
  /** One sentence. */
  message: string;
  /** Logged (a reserved `$` topic is only counted). */
  log: boolean;
}

export function checkPublish(
  client: Client | null,
  topic: string,
  payload: Buffer,
  opts: { allowAnonymous: boolean; maxPayloadBytes: number },
  /** MQTT 5 Payload Format Indicator 1: the sender says the payload is UTF-8. */
  utf8Payload = false,
): PublishRefusal | null {
  // The parser decodes invalid bytes to U+FFFD, so that is what shows here.
  if (topic.includes('\u0000') || topic.includes('\ufffd')) {
    return { reason: 'malformed_topic', message: 'publish refused: topic is not valid UTF-8 or contains U+0000', log: true };
  }
  if (topic.startsWith('$')) return { reason: 'acl_publish', message: 'topics starting with $ are reserved', log: false };
  const user = userOf(client);
  if (client && (user ? !user.canPublish(topic) : !opts.allowAnonymous)) {
    return { reason: 'acl_publish', message: `publish refused: "${topic}" is outside the client ACL`, log: true };
  }
  if (payload.length > opts.maxPayloadBytes) {
    return {
      reason: 'oversize',
      message: `publish refused: payload of ${payload.length} bytes exceeds broker.maxPayloadBytes`,
      log: true,
    };
  }
  // MQTT 5 §3.3.2.3.2: a payload said to be UTF-8 that is not is refused (PUBACK 0x99), not stored as it came.
  if (utf8Payload && !isUtf8(payload)) {
    return { reason: 'payload_format', message: 'publish refused: Payload Format Indicator says UTF-8 and the payload is not', log: true };
  }
  return null;
}

/** The subscriptions (aedes' objects, of the SUBSCRIBE packet) this hook granted. */
const grantedSubs = new WeakSet<object>();

/**
 * Makes the persistence store only the subscriptions subscribeHook granted. aedes authorises the
 * filters of a packet one by one, and for each one granted stores the whole packet's list: the
 * filters not granted (yet) are left out, and each stored later when its own grant stores the list.
 */
export function storeGrantedOnly(persistence: Pick<BrokerPersistence, 'addSubscriptions'>): void {
  const add = persistence.addSubscriptions.bind(persistence);
  persistence.addSubscriptions = (client, subs) => add(client, subs.filter((s) => grantedSubs.has(s)));
}

/** aedes' `authorizeSubscribe` hook. */
export function subscribeHook(
  opts: { allowAnonymous: boolean; maxSubscriptionsPerClient: number },
  ctx: { logger: Logger; countRejected(reason: string): void },
) {
  return (client: Client, sub: Subscription, done: (err: Error | null, sub: Subscription | null) => void): void => {
    const user = userOf(client);
    const shared = sharedFilterOf(sub.topic);
    if (shared === 'malformed') {
      ctx.countRejected('malformed_subscription');
      ctx.logger.warn({ client: client.id }, 'subscription refused: malformed $share/ topic filter');
      return done(null, null);
    }
    const filter = shared ? shared.filter : sub.topic;
    if (filter.startsWith('$SYS') || (user ? !user.canSubscribe(filter) : !opts.allowAnonymous)) {
      ctx.countRejected('acl_subscribe');
      ctx.logger.warn({ client: client.id, topic: shownTopic(sub.topic) }, 'subscription refused: outside the ACL');
      return done(null, null); // SUBACK 0x80 for this filter; the client stays connected
    }
    if (!admitSubscription(client as SubscribingClient, subscriptionsOf(client), sub.topic, opts.maxSubscriptionsPerClient)) {
      ctx.countRejected('max_subscriptions');
      ctx.logger.warn(
        { client: client.id, topic: shownTopic(sub.topic), max: opts.maxSubscriptionsPerClient },
        'subscription refused: broker.maxSubscriptionsPerClient reached',
      );
      return done(null, null);
    }
    grantedSubs.add(sub);
    done(null, sub);
  };
}

/**
 * aedes' `authorizeForward` hook, for each message on its way to a subscriber:
 * - an MQTT 5 subscriber that set a Maximum Packet Size does not get a packet larger than that
 *   (MQTT 5 3.1.2.11.4: the server discards it; aedes only records the limit);
 * - a will published for an MQTT 5 client carries its will properties, and Will Delay Interval is
 *   not a PUBLISH property (subscribers' parsers refuse the packet), so it is left out.
 */
export function forwardHook<P extends ForwardedPacket>(client: Client | null, packet: P): P | undefined {
  let out = packet;
  if (packet.properties?.willDelayInterval !== undefined) {
    const { willDelayInterval: _, ...properties } = packet.properties;
    out = Object.assign(Object.create(Object.getPrototypeOf(packet) as object) as P, packet, { properties });
  }
  const max = client ? maximumPacketSizeOf(client) : undefined;
  return max !== undefined && packetSize(out) > max ? undefined : out;
}

interface ForwardedPacket {
  topic: string;
  payload: Buffer | string;
  qos: number;
  properties?: { willDelayInterval?: number } & Record<string, unknown>;
}

/** Bytes of the PUBLISH as sent to an MQTT 5 subscriber. */
function packetSize(p: ForwardedPacket): number {
  try {
    return mqttPacket.generate({ cmd: 'publish', topic: p.topic, payload: p.payload, qos: p.qos as 0 | 1 | 2, messageId: p.qos > 0 ? 1 : undefined, properties: p.properties as never, retain: false, dup: false }, { protocolVersion: 5 }).length;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}
