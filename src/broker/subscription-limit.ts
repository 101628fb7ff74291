/**
 * Subscriptions per client, bounded (`broker.maxSubscriptionsPerClient`): 100,000 subscriptions
 * from one client cost the gateway 150 MiB before.
 *
 * aedes authorises every filter of a SUBSCRIBE packet before it records any of them (for a
 * persistent session the record waits for the persistence), so counting what the client already
 * has is not enough: filters granted and not yet recorded are counted too, until they show up in
 * the client's subscriptions (or for a few seconds, should one never do). Re-subscribing to a filter
 * the client has is always allowed (it replaces the old one). A session restored on reconnect
 * counts its subscriptions the same way.
 */

/** Where the grants not yet recorded are kept (on the aedes client). */
export interface SubscribingClient {
  sluiceGranted?: Map<string, number>;
}

const IN_FLIGHT_MS = 5000;

/** True when `filter` may be added for `client` (holding `subs`, keyed by filter) under `max`; records the grant. */
export function admitSubscription(
  client: SubscribingClient,
  subs: Record<string, unknown>,
  filter: string,
  max: number,
  now = Date.now(),
): boolean {
  if (subs[filter]) return true;
  const granted = (client.sluiceGranted ??= new Map());
  for (const [f, at] of granted) if (subs[f] || now - at > IN_FLIGHT_MS) granted.delete(f);
  if (granted.has(filter)) return true;
  if (Object.keys(subs).length + granted.size >= max) return false;
  granted.set(filter, now);
  return true;
}
