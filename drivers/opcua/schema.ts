/**
 * Options of the OPC UA client driver: one endpoint (a PLC, a SCADA server), its security, the user
 * identity, and the nodes to read, by NodeId or browse path, by subscription (default) or polling.
 */
import { z } from 'zod';
import { duration, name, secret, topicName, republishSchema } from '../../src/core/config-types.js';
import { writableSchema } from '../write/schema.js';

export const SECURITY_MODES = ['None', 'Sign', 'SignAndEncrypt'] as const;
/** The policies of OPC UA 1.04+ that Node's OpenSSL supports (Basic128Rsa15 needs RSA PKCS#1 v1.5 decryption, which Node refuses). */
export const SECURITY_POLICIES = ['None', 'Basic256Sha256', 'Aes128_Sha256_RsaOaep', 'Aes256_Sha256_RsaPss', 'Basic256'] as const;

export const opcuaNodeSchema = z
  .strictObject({
    /** `ns=2;s=Temperature`, `ns=3;i=1001`, `i=2258`, or `nsu=<uri>;s=...`. */
    nodeId: z.string().min(1).optional(),
    /** From the Root folder, e.g. `/Objects/2:Plant/2:Temperature` (`/`: hierarchical, `.`: aggregates). */
    browsePath: z.string().regex(/^[/.]/, 'starts with "/" or "." (e.g. /Objects/2:Plant/2:Temperature)').optional(),
    /** The point's name in writes and health (default: the last part of the NodeId or browse path). */
    name: name().optional(),
    /** Defaults to `opcua/<driver>/<name>`. */
    topic: topicName().optional(),
    unit: z.string().optional(),
    /** Subscription: how often the server samples this node (default: the driver's). */
    samplingInterval: duration().optional(),
    /** Subscription: changes the server keeps between two publishes (default: the driver's). */
    queueSize: z.number().int().min(1).max(1000).optional(),
    /** Subscription: the least change reported (`deadbandType` absolute, or percent of the EURange). */
    deadband: z.number().min(0).optional(),
    deadbandType: z.enum(['absolute', 'percent']).default('absolute'),
    writable: writableSchema.optional(),
  })
  .superRefine((n, ctx) => {
    if ((n.nodeId === undefined) === (n.browsePath === undefined))
      ctx.addIssue({ code: 'custom', path: ['nodeId'], message: 'give either nodeId or browsePath' });
  });

const identitySchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('anonymous') }),
  z.strictObject({
    type: z.literal('username'),
    username: z.string().min(1),
    /** Prefer `passwordFile` (a file readable by the gateway only) to a password in the config. */
    password: secret(z.string()).optional(),
    passwordFile: z.string().optional(),
  }),
  z.strictObject({
    type: z.literal('certificate'),
    /** PEM or DER user certificate and its PEM private key. */
    certificate: z.string().min(1),
    privateKey: z.string().min(1),
  }),
]);

export const opcuaSchema = z
  .strictObject({
    name: name(),
    type: z.literal('opcua'),
    enabled: z.boolean().default(true),
    /** Also publish each reading on the gateway's own broker, once durable (off unless set). */
    republish: republishSchema.optional(),
    endpoint: z.string().regex(/^opc\.tcp:\/\/[^/\s]+/, 'is an opc.tcp:// URL (e.g. opc.tcp://plc.local:4840)'),
    security: z
      .strictObject({
        mode: z.enum(SECURITY_MODES).default('None'),
        /** Default: None without security, Basic256Sha256 with. */
        policy: z.enum(SECURITY_POLICIES).optional(),
      })
      .prefault({}),
    identity: identitySchema.default({ type: 'anonymous' }),
    /**
     * Certificate store: `own/` (the client certificate, made on first start), `trusted/certs/`
     * (server certificates trusted), `rejected/` (server certificates seen and refused). Default
     * `<dataDir>/opcua-pki`.
     */
    pkiDir: z.string().optional(),
    /** Trust any server certificate (testing only: it defeats the point of Sign and SignAndEncrypt). */
    acceptUnknownServerCertificate: z.boolean().default(false),
    /** `subscription` (the server reports changes) or `poll` (read every `interval`). */
    mode: z.enum(['subscription', 'poll']).default('subscription'),
    publishingInterval: duration().default(1000),
    samplingInterval: duration().default(1000),
    queueSize: z.number().int().min(1).max(1000).default(1),
    /** Poll mode: the period of the reads. */
    interval: duration().default(1000),
    /** Per request (connect, read, write, browse). */
    timeout: duration().default(10_000),
    /** Failed connection attempts in a row before the server is `down`. */
    downAfter: z.number().int().min(1).max(100).default(3),
    /** Longest wait between reconnection attempts. */
    maxBackoff: duration().default(30_000),
    nodes: z.array(opcuaNodeSchema).min(1).max(100_000),
  })
  .superRefine((c, ctx) => {
    const policy = c.security.policy;
    if (c.security.mode === 'None' && policy !== undefined && policy !== 'None')
      ctx.addIssue({ code: 'custom', path: ['security', 'policy'], message: `policy ${policy} needs mode Sign or SignAndEncrypt` });
    if (c.security.mode !== 'None' && policy === 'None')
      ctx.addIssue({ code: 'custom', path: ['security', 'policy'], message: `mode ${c.security.mode} needs a policy other than None` });
    if (c.identity.type === 'username' && (c.identity.password === undefined) === (c.identity.passwordFile === undefined))
      ctx.addIssue({ code: 'custom', path: ['identity'], message: 'give either password or passwordFile' });
    const names = new Map<string, number>();
    c.nodes.forEach((n, i) => {
      const nm = nodeName(n);
      const other = names.get(nm);
      if (other !== undefined)
        ctx.addIssue({ code: 'custom', path: ['nodes', i, 'name'], message: `node name "${nm}" is also nodes[${other}]; set "name"` });
      else names.set(nm, i);
    });
  });

export type OpcuaConfig = z.output<typeof opcuaSchema>;
export type OpcuaNodeConfig = z.output<typeof opcuaNodeSchema>;

/** A node's name: `name`, else the last part of its NodeId or browse path, reduced to name characters. */
export function nodeName(n: Pick<OpcuaNodeConfig, 'name' | 'nodeId' | 'browsePath'>): string {
  if (n.name) return n.name;
  const raw = n.nodeId ? n.nodeId.replace(/^.*;[sigb]=/, '') : (n.browsePath ?? '').split(/[/.]/).pop()!.replace(/^\d+:/, '');
  const cleaned = raw.replace(/[^A-Za-z0-9_.-]+/g, '_').replace(/^[^A-Za-z0-9]+/, '').slice(0, 64);
  return cleaned || 'node';
}
