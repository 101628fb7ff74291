/**
 * Who may connect: the broker's CONNECT check (aedes' `authenticate` hook).
 *
 * Guarantees, in the order checked:
 * - a client id longer than `maxClientIdLength` is refused (identifier rejected);
 * - a TLS client certificate mapped to a user logs in as that user; otherwise a username and
 *   password are checked by the shared login limiter (scrypt hashes, per-address and per-user
 *   failure limits); anonymous clients only where allowed, never from a foreign web page;
 * - a will outside the user's publish ACL, on a `$` topic or over the payload limit is refused;
 * - a client id connected as another user cannot be taken over (identifier rejected);
 * - a persistent session belongs to the user that created it, recorded before the CONNACK, and
 *   at most `maxPersistentSessions` exist (session-owners.ts).
 * Each refusal is counted by reason and logged with the client's address; the CONNACK carries the
 * MQTT 3.1.1 return code (aedes maps it to the MQTT 5 reason code for 5.0 clients).
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { AuthenticateError, Client } from 'aedes';
import type { Logger } from 'pino';
import { aclCovers } from '../auth/acl.js';
import type { Logins } from '../auth/logins.js';
import { isForeignWebOrigin } from '../auth/origin.js';
import { filterSet } from '../core/topics.js';
import { type AedesClient, connectedClient, isPersistent, pendingWill } from './aedes-adapter.js';
import type { Aedes } from 'aedes';
import { loginRefusal, willAllowed } from './connect-checks.js';
import type { BrokerConfig, BrokerUser } from './schema.js';
import { type SessionOwners, SessionsFullError } from './session-owners.js';

export interface CompiledUser {
  user: BrokerUser;
  canPublish: (topic: string) => boolean;
  canSubscribe: (topic: string) => boolean;
}

type Done = (error: AuthenticateError | null, success: boolean | null) => void;

/** The user a client logged in as (undefined: anonymous). */
export function userOf(client: Client | null): CompiledUser | undefined {
  return (client as AedesClient | null)?.sluiceUser as CompiledUser | undefined;
}

export function clientAddress(client: Client): string {
  const conn = client.conn as Socket;
  return conn.remoteAddress ?? client.req?.socket?.remoteAddress ?? 'unknown';
}

export class Authenticator {
  private readonly users = new Map<string, CompiledUser>();
  private readonly certUsers = new Map<string, CompiledUser>();

  constructor(
    private readonly config: BrokerConfig,
    readonly allowAnonymous: boolean,
    private readonly logins: Logins,
    private readonly sessions: SessionOwners,
    private readonly broker: () => Aedes | undefined,
    private readonly ctx: { logger: Logger; countRejected(reason: string): void },
  ) {
    for (const user of config.users) {
      const compiled = { user, canPublish: filterSet(user.publish), canSubscribe: aclCovers(user.subscribe) };
      this.users.set(user.username, compiled);
      if (user.certCN) this.certUsers.set(user.certCN, compiled);
    }
  }

  /** aedes' `authenticate` hook. */
  readonly hook = (client: Client, username: string | undefined, password: Buffer | undefined, done: Done): void =>
    void this.check(client, username, password, done);

  private async check(client: Client, username: string | undefined, password: Buffer | undefined, done: Done): Promise<void> {
    const address = clientAddress(client);
    const refuse = (code: 2 | 3 | 4 | 5, reason: string, msg: string) => {
      this.ctx.countRejected(reason);
      this.ctx.logger.warn({ client: client.id, address, username }, msg);
      const err = new Error(msg) as AuthenticateError;
      err.returnCode = code;
      done(err, false);
    };
    // aedes bounds client ids only for MQTT 3.1; 3.1.1 ids are as long as the packet allows.
    if (Buffer.byteLength(client.id) > this.config.maxClientIdLength) {
      return refuse(2, 'client_id_too_long', `login refused: the client id is longer than broker.maxClientIdLength (${this.config.maxClientIdLength} bytes)`);
    }
    let user: CompiledUser | undefined;
    // A TLS client certificate mapped to a user logs in as that user.
    const cn = (client.conn as TLSSocket).getPeerCertificate?.()?.subject?.CN;
    const certUser = cn && (client.conn as TLSSocket).authorized ? this.certUsers.get(String(cn)) : undefined;
    if (certUser) {
      user = certUser;
    } else if (username === undefined) {
      if (this.allowAnonymous && isForeignWebOrigin(client.req)) {
        // Any web page the operator opens could otherwise talk to a loopback WebSocket listener
        // (cross-site WebSocket hijacking): a browser sends its page's Origin, so a page from
        // elsewhere must log in with a username.
        return refuse(5, 'auth_anonymous', 'login refused: anonymous WebSocket clients from a web page on another site must log in with a username');
      }
      if (!this.allowAnonymous) {
        return refuse(5, 'auth_anonymous', 'login refused: anonymous clients are not allowed on this listener (broker.allowAnonymous)');
      }
    } else {
      const known = this.users.get(username);
      const result = await this.logins.check({
        address,
        username,
        secret: password?.toString('utf8') ?? '',
        hashes: known && password !== undefined ? [known.user.passwordHash] : [],
      });
      if (!result.ok) {
        const r = loginRefusal(result);
        return refuse(r.code, result.reason, r.message);
      }
      user = known;
    }
    const will = pendingWill(client);
    const mayPublish = user ? user.canPublish : () => this.allowAnonymous;
    if (will && !willAllowed(will, mayPublish, this.config.maxPayloadBytes)) {
      return refuse(5, 'acl_will', 'login refused: the will message is outside the client ACL or larger than broker.maxPayloadBytes');
    }
    if (this.isTakeoverByAnotherUser(client, user)) {
      return refuse(2, 'client_id_taken', 'login refused: the client id is in use by another user');
    }
    const principal = user?.user.username ?? '';
    const persistent = isPersistent(client);
    const verdict = this.sessions.check(client.id, principal, persistent);
    if (verdict === 'owned_by_another') {
      return refuse(5, 'session_owned', 'login refused: a persistent session with this client id belongs to another user');
    }
    if (verdict === 'full') {
      return refuse(3, 'max_persistent_sessions', 'login refused: broker.maxPersistentSessions reached; connect with a clean session');
    }
    try {
      await this.sessions.connected(client.id, principal, persistent);
    } catch (err) {
      if (err instanceof SessionsFullError) return refuse(3, 'max_persistent_sessions', 'login refused: broker.maxPersistentSessions reached; connect with a clean session');
      this.ctx.logger.error({ err: (err as Error).message }, 'persistent session owner not recorded');
      return refuse(3, 'store_failed', 'login refused: the session owner could not be recorded; try again');
    }
    (client as AedesClient).sluiceUser = user;
    done(null, true);
  }

  /**
   * A CONNECT with the id of a connected client takes its session over (MQTT), which would let any
   * user knock another user's sensor off by reusing its id. A takeover is allowed only by the same
   * user (a sensor reconnecting); another user gets CONNACK 2 (identifier rejected).
   */
  private isTakeoverByAnotherUser(client: Client, user: CompiledUser | undefined): boolean {
    const existing = connectedClient(this.broker(), client.id);
    return !!existing && userOf(existing)?.user.username !== user?.user.username;
  }
}
