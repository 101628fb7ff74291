/**
 * What a login check needs to know of a configured user (`broker.users` in the config): the
 * shape is defined by the broker's schema, and the HTTP ingest and other listeners depend only on
 * this, not on the broker.
 */
export interface UserCredentials {
  username: string;
  /** Topic filters this user may publish to. */
  readonly publish: readonly string[];
  /** Bearer token hash for `POST /api/events`, made with `sluice passwd`. */
  tokenHash?: string;
}
