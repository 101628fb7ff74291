/**
 * MQTT 5 shared subscriptions (MQTT 5.0 §4.8.2), on MQTT 3.1.1 clients too (as Mosquitto does):
 * a client subscribing to `$share/<group>/<filter>` joins group `<group>` on `<filter>`, and each
 * message published on `<filter>` goes to one connected member of each group on it, in turn
 * (round robin), at the lower of its QoS and the member's granted QoS. A normal subscription to
 * `<filter>` gets its own copy as always. No retained messages are sent on subscribing.
 *
 * aedes 2.0 beta refuses `$share/` itself (SUBACK 0x9E for MQTT 5, and CONNACK says the feature is
 * unavailable), so this layer sits around it (the aedes parts are in aedes-adapter.ts):
 * - each SUBSCRIBE and UNSUBSCRIBE is rewritten before aedes handles it: `$share/g/f` becomes
 *   `$share\0/g/f` (HELD), which aedes treats as any other filter: it is what the client's
 *   subscription is kept under, in a persistent session too (so it is restored on reconnect), and
 *   it matches no topic anyone can publish, so aedes neither queues offline copies nor sends
 *   retained messages for it. A malformed one (empty or `+`/`#` in the share name, no filter, No
 *   Local set, MQTT-3.8.3-4) is refused: SUBACK 0x8F (3.1.1: 0x80);
 * - authorize.ts checks the ACL (and the subscription limit) on `<filter>`;
 * - when aedes registers the subscription's delivery function, the client joins its group instead,
 *   and the group, not the member, listens on `<filter>`: one listener per group, so each message
 *   is routed once per group. aedes removes the function on UNSUBSCRIBE and on disconnect, which
 *   takes the member out of its group (the rotation skips a member already closing, too);
 * - CONNACK says `sharedSubscriptionAvailable: true`.
 * A message published while no member of a group is connected is not kept for the group. A copy
 * sent to a member with a persistent session is queued for it until acknowledged (as aedes does
 * for its own subscriptions), so it is resent if the member reconnects. A client holding both a
 * shared and a normal subscription that match a message gets it once (aedes delivers a message to
 * a client once).
 */
import type { Aedes, Client } from 'aedes';
import type mqttPacket from 'mqtt-packet';
import {
  beforeHandling,
  beforeWriting,
  type DeliveredPacket,
  type DeliverFn,
  isClosed,
  isPersistent,
  persistenceOf,
  protocolVersion,
  routeSubscriptions,
  subscriptionOf,
} from './aedes-adapter.js';

const SHARE = '$share/';
/** How a shared subscription is held in aedes: not `$share/` (which aedes refuses), and U+0000 no client may send. */
const HELD = '$share\u0000/';
/** A malformed `$share/` filter, held so that aedes refuses it (authorize.ts) and it can be told apart in the SUBACK. */
const MALFORMED = '$share\u0000!';
/** MQTT 5 SUBACK reason code: Topic Filter invalid. */
const TOPIC_FILTER_INVALID = 0x8f;
/** MQTT 5 SUBACK reason code aedes gives a subscription the authorize hook refused. */
const NOT_AUTHORIZED = 0x87;

export interface SharedFilter {
  group: string;
  filter: string;
}

/** What an (already rewritten) subscription topic is: a shared one, a malformed `$share/` one, or a normal one (undefined). */
export function sharedFilterOf(topic: string): SharedFilter | 'malformed' | undefined {
  if (topic.startsWith(MALFORMED)) return 'malformed';
  if (!topic.startsWith(HELD)) return undefined;
  const rest = topic.slice(HELD.length);
  const slash = rest.indexOf('/');
  return { group: rest.slice(0, slash), filter: rest.slice(slash + 1) };
}

/** The topic as the client wrote it (for logs). */
export function shownTopic(topic: string): string {
  return topic.startsWith(HELD) ? SHARE + topic.slice(HELD.length) : topic.startsWith(MALFORMED) ? '$share/(malformed)' : topic;
}

/** The held form of a topic filter a client sent: `$share/g/f` held, a malformed one marked, any other unchanged. */
export function heldTopic(topic: string, noLocal: boolean, index: number): string {
  // A client may not name the held forms itself.
  if (topic.includes('\u0000')) return MALFORMED + index;
  if (!topic.startsWith(SHARE)) return topic;
  const rest = topic.slice(SHARE.length);
  const slash = rest.indexOf('/');
  const group = slash < 0 ? '' : rest.slice(0, slash);
  if (!group || /[+#]/.test(group) || slash === rest.length - 1 || noLocal) return MALFORMED + index;
  return HELD + rest;
}

interface Member {
  client: Client;
  deliver: DeliverFn;
  qos: number;
}

interface Group {
  filter: string;
  members: Member[];
  /** Index of the member the next message tries first. */
  next: number;
  listener: DeliverFn;
}

type SubscribeHook<S extends { topic: string }> = (client: Client, sub: S, done: (err: Error | null, sub: S | null) => void) => void;

export class SharedSubscriptions {
  /** Groups by held topic (group and filter). */
  private readonly groups = new Map<string, Group>();
  /** Clients granted a shared subscription whose delivery function aedes has not registered yet, by held topic. */
  private readonly granted = new Map<string, Set<Client>>();
  private readonly emitter: ReturnType<typeof routeSubscriptions>;

  constructor(private readonly aedes: Aedes) {
    this.emitter = routeSubscriptions(aedes, {
      claims: (topic) => topic.startsWith(HELD),
      add: (topic, deliver, done) => this.join(topic, deliver, done),
      remove: (topic, deliver, done) => this.leave(topic, deliver, done),
    });
  }

  /** For each new connection: its SUBSCRIBE and UNSUBSCRIBE filters held, its CONNACK and SUBACKs amended. */
  attach(client: Client): void {
    /** SUBSCRIBE packets with a malformed filter, by packet id, until their SUBACK is written. */
    const malformed = new Map<number, mqttPacket.ISubscribePacket>();
    beforeHandling(client, (packet) => {
      if (packet.cmd === 'subscribe') {
        let bad = false;
        packet.subscriptions.forEach((s, i) => {
          s.topic = heldTopic(s.topic, !!s.nl, i);
          bad ||= s.topic.startsWith(MALFORMED);
        });
        if (bad && packet.messageId !== undefined && malformed.size < 100) malformed.set(packet.messageId, packet);
      } else if (packet.cmd === 'unsubscribe') {
        packet.unsubscriptions = packet.unsubscriptions.map((t, i) => heldTopic(t, false, i));
      }
    });
    beforeWriting(client, (packet) => {
      if (packet.cmd === 'connack' && packet.properties?.sharedSubscriptionAvailable === false) {
        packet.properties.sharedSubscriptionAvailable = true;
      } else if (packet.cmd === 'suback' && packet.messageId !== undefined && malformed.has(packet.messageId)) {
        // aedes answers in the order of the packet's subscriptions (as it left them, duplicates removed).
        const sub = malformed.get(packet.messageId)!;
        malformed.delete(packet.messageId);
        if (protocolVersion(client) !== 5) return;
        sub.subscriptions.forEach((s, i) => {
          if (s.topic.startsWith(MALFORMED) && packet.granted[i] === NOT_AUTHORIZED) (packet.granted as number[])[i] = TOPIC_FILTER_INVALID;
        });
      }
    });
  }

  /** Wraps aedes' authorizeSubscribe hook: a granted shared subscription is remembered until aedes registers it. */
  authorizing<S extends { topic: string }>(hook: SubscribeHook<S>): SubscribeHook<S> {
    return (client, sub, done) =>
      hook(client, sub, (err, granted) => {
        if (!err && granted && granted.topic.startsWith(HELD)) {
          let clients = this.granted.get(granted.topic);
          if (!clients) this.granted.set(granted.topic, (clients = new Set()));
          clients.add(client);
        }
        done(err, granted);
      });
  }

  /** The ids of a group's members, in rotation order. */
  membersOf(group: string, filter: string): string[] {
    return this.groups.get(HELD + group + '/' + filter)?.members.map((m) => m.client.id) ?? [];
  }

  private join(topic: string, deliver: DeliverFn, done: () => void): void {
    const client = this.claimant(topic, deliver);
    if (!client) return done(); // aedes registered a function for no client this layer granted: nothing to route to
    const member = { client, deliver, qos: subscriptionOf(client, topic)?.qos ?? 0 };
    const existing = this.groups.get(topic);
    if (existing) {
      existing.members.push(member);
      return done();
    }
    const shared = sharedFilterOf(topic) as SharedFilter;
    const group: Group = { filter: shared.filter, members: [member], next: 0, listener: () => {} };
    // MQTT-4.7.2-1: a filter starting with a wildcard does not match `$` topics.
    const skipDollar = shared.filter.startsWith('+') || shared.filter.startsWith('#');
    group.listener = (packet, cb) => (skipDollar && packet.topic.startsWith('$') ? cb() : this.route(group, packet, cb));
    this.groups.set(topic, group);
    this.emitter.listen(shared.filter, group.listener, done);
  }

  private leave(topic: string, deliver: DeliverFn, done: () => void): void {
    const group = this.groups.get(topic);
    const i = group ? group.members.findIndex((m) => m.deliver === deliver) : -1;
    if (!group || i < 0) return done();
    const [gone] = group.members.splice(i, 1);
    this.granted.get(topic)?.delete(gone.client);
    if (i < group.next) group.next--;
    if (group.members.length > 0) return done();
    this.groups.delete(topic);
    this.emitter.unlisten(group.filter, group.listener, done);
  }

  /** The client aedes is registering `deliver` for: the granted one whose subscription holds it. */
  private claimant(topic: string, deliver: DeliverFn): Client | undefined {
    const clients = this.granted.get(topic);
    if (!clients) return undefined;
    let found: Client | undefined;
    for (const c of clients) {
      if (isClosed(c)) clients.delete(c);
      else if (!found && subscriptionOf(c, topic)?.deliver === deliver) found = c;
    }
    if (found) clients.delete(found);
    if (clients.size === 0) this.granted.delete(topic);
    return found;
  }

  /** Sends a message to the group's next connected member. */
  private route(group: Group, packet: DeliveredPacket, cb: () => void): void {
    const n = group.members.length;
    for (let k = 0; k < n; k++) {
      const i = (group.next + k) % n;
      const member = group.members[i];
      if (isClosed(member.client)) continue;
      group.next = (i + 1) % n;
      return this.send(member, packet, cb);
    }
    cb();
  }

  private send(member: Member, packet: DeliveredPacket, cb: () => void): void {
    // Own properties only: aedes copies the packet again (aedes-packet) and keeps its brokerId and counter.
    const copy: DeliveredPacket = { ...packet, qos: Math.min(packet.qos, member.qos) };
    if (copy.qos === 0 || !isPersistent(member.client)) return member.deliver(copy, cb);
    // As aedes does for a persistent session's own subscriptions: queued until acknowledged.
    const deliver = () => member.deliver(copy, cb);
    persistenceOf(this.aedes)
      .outgoingEnqueue({ clientId: member.client.id }, copy)
      .then(deliver, deliver);
  }
}
