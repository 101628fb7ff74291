/**
 * Options of the Event Hubs uplink: AMQP 1.0 to an Azure Event Hub (or any AMQP 1.0 peer), one
 * message per event keyed by topic, or one contract batch per message with `aggregate`.
 */
import { z } from 'zod';
import { duration, secret, size } from '../../src/core/config-types.js';
import { commonUplinkOptions, proxySchema } from '../common-schema.js';

export const eventHubsUplinkSchema = z
  .strictObject({
    ...commonUplinkOptions,
    type: z.literal('eventhubs'),
    /**
     * `Endpoint=sb://NS.servicebus.windows.net/;SharedAccessKeyName=NAME;SharedAccessKey=KEY;EntityPath=HUB`
     * as the Azure portal shows it (or with `SharedAccessSignature=...`). Fields below override its parts.
     */
    connectionString: secret(z.string().min(1)).optional(),
    /** The namespace host, e.g. `NS.servicebus.windows.net`. */
    host: z.string().min(1).optional(),
    /** Default per transport: 5671 (tls), 5672 (tcp), 443 (websocket). */
    port: z.number().int().min(1).max(65535).optional(),
    /**
     * `tls` (amqps, port 5671) for Event Hubs; `websocket` (AMQP over `wss://HOST:443/$servicebus/websocket`,
     * through an outbound proxy if one applies); `tcp` (port 5672) only for a local AMQP 1.0 peer.
     * Unset: `websocket` when a proxy applies to the host (`proxy:`, or HTTPS_PROXY not excluded by
     * NO_PROXY), else `tls`.
     */
    transport: z.enum(['tls', 'tcp', 'websocket']).optional(),
    /** Outbound proxy for `transport: websocket` (uplink/proxy.ts): a URL, `none`, or unset for HTTPS_PROXY / NO_PROXY. */
    proxy: proxySchema,
    /** The Event Hub (entity path). */
    eventHub: z.string().min(1).optional(),
    /** The AMQP link target; default the Event Hub, or `<hub>/Partitions/<partitionId>`. */
    address: z.string().min(1).optional(),
    /** The `hostname` of the AMQP open frame (a RabbitMQ vhost is `vhost:NAME`); default the host. */
    hostname: z.string().min(1).optional(),
    keyName: z.string().min(1).optional(),
    key: secret(z.string().min(1)).optional(),
    /** A ready-made `SharedAccessSignature sr=...` token (it cannot be renewed: mind its expiry). */
    sasToken: secret(z.string().startsWith('SharedAccessSignature ')).optional(),
    /**
     * `sas-token`: SASL ANONYMOUS, then a SAS token put on the `$cbs` node and renewed before it
     * expires (how Event Hubs authenticates). `plain`: SASL PLAIN with keyName / key as user / password.
     */
    auth: z.enum(['sas-token', 'plain']).default('sas-token'),
    /** Lifetime of the SAS tokens built from the key; renewed at 80 % of it. */
    tokenTtl: duration().default(3_600_000),
    /** Partition key of every message; default the event's topic (per event) or the gateway id (aggregate). */
    partitionKey: z.string().min(1).max(128).optional(),
    /** Send to one partition instead of letting the partition key choose. */
    partitionId: z.string().regex(/^\d+$/, 'must be a partition number').optional(),
    /** One contract batch document per message instead of one message per event. */
    aggregate: z.boolean().default(false),
    /** Largest message the hub takes (1 MiB on Standard, 256 KiB on Basic); a larger event is rejected. */
    maxMessageBytes: size().default(1024 * 1024),
    connectTimeout: duration().default(10_000),
    /** How long sent messages may stay unsettled before the batch is retried on a new connection. */
    ackTimeout: duration().default(30_000),
  })
  .superRefine((c, ctx) => {
    const cs = c.connectionString ? parseConnectionString(c.connectionString) : {};
    // A CONNECT proxy in a plant passes HTTPS only: AMQP's own port would not get through it.
    if (c.proxy && c.proxy !== 'none' && (c.transport === 'tls' || c.transport === 'tcp'))
      ctx.addIssue({
        code: 'custom',
        path: ['proxy'],
        message: `a proxy carries only transport: websocket (AMQP over WebSocket), not ${c.transport}: set transport: websocket or leave it unset`,
      });
    if (c.connectionString && !cs.host)
      ctx.addIssue({ code: 'custom', path: ['connectionString'], message: 'has no Endpoint=sb://NAMESPACE/ part' });
    if (!c.host && !cs.host)
      ctx.addIssue({ code: 'custom', path: ['host'], message: 'is required (or a connectionString)' });
    if (!c.eventHub && !cs.eventHub && !c.address)
      ctx.addIssue({
        code: 'custom',
        path: ['eventHub'],
        message: 'is required (or EntityPath in the connectionString, or an address)',
      });
    const keyName = c.keyName ?? cs.keyName;
    const key = c.key ?? cs.key;
    const token = c.sasToken ?? cs.sasToken;
    if (c.auth === 'plain' && !(keyName && key))
      ctx.addIssue({ code: 'custom', path: ['key'], message: 'auth: plain needs keyName and key' });
    if (c.auth === 'sas-token' && !(keyName && key) && !token)
      ctx.addIssue({ code: 'custom', path: ['key'], message: 'auth: sas-token needs keyName and key, or a sasToken' });
  });
export type EventHubsUplinkConfig = z.output<typeof eventHubsUplinkSchema>;

export interface ConnectionStringParts {
  host?: string;
  eventHub?: string;
  keyName?: string;
  key?: string;
  sasToken?: string;
}

/** Parses an Azure connection string (`Key=Value;...`; the key may itself contain `=`). */
export function parseConnectionString(s: string): ConnectionStringParts {
  const kv = new Map<string, string>();
  for (const part of s.split(';')) {
    const i = part.indexOf('=');
    if (i > 0) kv.set(part.slice(0, i).trim().toLowerCase(), part.slice(i + 1).trim());
  }
  const endpoint = kv.get('endpoint');
  let host: string | undefined;
  if (endpoint) {
    try {
      host = new URL(endpoint).hostname || undefined;
    } catch {
      host = undefined;
    }
  }
  return {
    host,
    eventHub: kv.get('entitypath'),
    keyName: kv.get('sharedaccesskeyname'),
    key: kv.get('sharedaccesskey'),
    sasToken: kv.get('sharedaccesssignature'),
  };
}
