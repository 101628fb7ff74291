/**
 * Claims-based security (CBS), the way Event Hubs and Service Bus authenticate an AMQP connection:
 * after SASL ANONYMOUS the client sends a `put-token` request carrying a SAS token to the `$cbs`
 * node and waits for a `status-code` 200/202 reply. Tokens expire, so the caller renews them by
 * putting a new one on the same links before the old one lapses.
 */
import { randomUUID } from 'node:crypto';
import type { Connection, EventContext, Receiver, Sender } from 'rhea';
import { describeAmqpError } from './errors.js';

export class CbsClient {
  private sender?: Sender;
  private receiver?: Receiver;
  private readonly waiting = new Map<string, { resolve(): void; reject(err: Error): void }>();
  private readonly replyTo = `cbs-${randomUUID()}`;

  constructor(private readonly connection: Connection) {}

  /** Puts `token` for `audience`; rejects with the node's status description when refused or after `timeoutMs`. */
  async putToken(audience: string, token: string, timeoutMs: number): Promise<void> {
    await this.open(timeoutMs);
    const id = randomUUID();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`the $cbs node did not answer the put-token request within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      this.sender?.send({
        message_id: id,
        reply_to: this.replyTo,
        to: '$cbs',
        application_properties: { operation: 'put-token', type: 'servicebus.windows.net:sastoken', name: audience },
        body: token,
      });
    });
  }

  close(): void {
    for (const w of this.waiting.values()) w.reject(new Error('the connection closed'));
    this.waiting.clear();
  }

  private async open(timeoutMs: number): Promise<void> {
    if (this.sender && this.receiver) return;
    const c = this.connection;
    // As the Azure SDKs do: the reply link is named after reply_to (and targets it too).
    this.receiver = c.open_receiver({
      name: this.replyTo,
      source: { address: '$cbs' },
      target: { address: this.replyTo },
      credit_window: 16,
    });
    this.sender = c.open_sender({ target: { address: '$cbs' } });
    this.receiver.on('message', (ctx: EventContext) => this.onReply(ctx));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the $cbs node did not open within ${timeoutMs} ms`)), timeoutMs);
      const fail = (ctx: EventContext) => {
        clearTimeout(timer);
        const e = ctx.sender?.error ?? ctx.receiver?.error;
        reject(
          new Error(
            `the peer has no $cbs node for token authentication${e ? ` (${describeAmqpError(e)})` : ''}: use auth: plain`,
          ),
        );
      };
      this.sender?.once('sender_error', fail);
      this.receiver?.once('receiver_error', fail);
      this.sender?.once('sendable', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private onReply(ctx: EventContext): void {
    const m = ctx.message;
    const id = String(m?.correlation_id ?? '');
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    const props = (m?.application_properties ?? {}) as Record<string, unknown>;
    const status = Number(props['status-code'] ?? props.statusCode);
    if (status === 200 || status === 202) w.resolve();
    else
      w.reject(
        new Error(
          `the token was refused (${status || 'no status'}: ${String(props['status-description'] ?? props.statusDescription ?? 'no description')})`,
        ),
      );
  }
}
