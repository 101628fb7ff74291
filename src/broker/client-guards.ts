/**
 * Guards put on each client connection: the packet length limit and the slow-consumer guard.
 *
 * - A packet whose declared length exceeds the limit is refused as soon as the length is parsed,
 *   before its body is buffered (aedes would otherwise buffer the whole claimed length first), so
 *   a huge remaining-length claim costs no memory; the connection is closed (an MQTT 5 client is
 *   told why: DISCONNECT 0x95), counted `oversize`.
 * - A subscriber that stops reading must not hold up intake. aedes completes a delivery only once
 *   the subscriber's socket drained (up to drainTimeout), and the publisher's PUBACK waits for its
 *   deliveries, so one stuck subscriber would stall every sensor publishing to its topics. Here a
 *   delivery completes at once, and the subscriber is disconnected as a slow consumer (as NATS
 *   does) when its unsent backlog passes a bound (memory), or when its socket has not drained for
 *   `stallMs`. A burst a reading client takes in, such as the queue of a persistent session sent
 *   on reconnect (bounded below the backlog limit), does not trip it.
 */
import type { Socket } from 'node:net';
import type { Client } from 'aedes';
import type { Logger } from 'pino';
import { limitPacketLength, replaceDrainWait } from './aedes-adapter.js';

interface GuardContext {
  logger: Logger;
  countRejected(reason: string): void;
}

export function guardPacketSize(client: Client, limit: number, ctx: GuardContext): void {
  limitPacketLength(
    client,
    limit,
    (bytes) => {
      ctx.countRejected('oversize');
      ctx.logger.warn({ client: client.id, bytes }, 'publish refused: larger than broker.maxPayloadBytes; connection closed');
    },
    () => ctx.countRejected('malformed'),
  );
}

export function guardSlowConsumer(client: Client, conn: Socket, limits: { maxBacklogBytes: number; stallMs: number }, ctx: GuardContext): void {
  let timer: NodeJS.Timeout | undefined;
  const drained = () => {
    clearTimeout(timer);
    timer = undefined;
  };
  const drop = (why: string) => {
    drained();
    if (conn.destroyed) return;
    ctx.countRejected('slow_consumer');
    ctx.logger.warn(
      { client: client.id, backlog: conn.writableLength, why },
      'subscriber dropped: it does not read what it subscribed to (slow consumer)',
    );
    conn.destroy();
  };
  const installed = replaceDrainWait(client, (callback) => {
    if (conn.writableLength > limits.maxBacklogBytes) {
      drop(`more than ${limits.maxBacklogBytes} bytes waiting`);
      setImmediate(callback, new Error('slow consumer'), client);
      return;
    }
    if (!timer) {
      timer = setTimeout(() => drop(`not drained for ${limits.stallMs} ms`), limits.stallMs);
      conn.once('drain', drained);
    }
    setImmediate(callback, null, client);
  });
  if (installed) conn.once('close', drained);
}
