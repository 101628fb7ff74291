/**
 * `sluice opcua browse --endpoint URL [--node ID] [--depth N]`: prints an OPC UA server's address
 * space, so an operator can write the `nodes:` of an opcua driver without another tool. Security
 * and identity flags mirror the driver's options; the certificate store is the driver's
 * (`<data>/opcua-pki`), so a server certificate trusted for one is trusted for the other.
 */
import { browseTree } from '../../../drivers/opcua/browse.js';
import { createClient, explainConnectError, pkiDirOf, userIdentity } from '../../../drivers/opcua/connect.js';
import { opcuaSchema } from '../../../drivers/opcua/schema.js';
import { parseFlags, required, UsageError } from '../args.js';
import { usageOf } from '../help.js';

const USAGE = usageOf('opcua');

export default async function opcua(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'browse') throw new UsageError(USAGE);
  const { values } = parseFlags(rest, {
    endpoint: { type: 'string' },
    node: { type: 'string' },
    depth: { type: 'string' },
    'security-mode': { type: 'string' },
    'security-policy': { type: 'string' },
    username: { type: 'string' },
    'password-file': { type: 'string' },
    pki: { type: 'string' },
    data: { type: 'string' },
    'accept-unknown-certificate': { type: 'boolean' },
    'max-nodes': { type: 'string' },
    json: { type: 'boolean' },
  });
  const depth = Number(values.depth ?? 2);
  const maxNodes = Number(values['max-nodes'] ?? 2000);
  if (!Number.isInteger(depth) || depth < 1 || depth > 20) throw new UsageError('--depth is a whole number from 1 to 20');
  if (!Number.isInteger(maxNodes) || maxNodes < 1) throw new UsageError('--max-nodes is a positive whole number');
  const parsed = opcuaSchema.safeParse({
    name: 'browse',
    type: 'opcua',
    endpoint: required(values.endpoint, '--endpoint'),
    security: { mode: values['security-mode'] ?? 'None', ...(values['security-policy'] ? { policy: values['security-policy'] } : {}) },
    identity: values.username ? { type: 'username', username: values.username, passwordFile: values['password-file'] } : { type: 'anonymous' },
    acceptUnknownServerCertificate: values['accept-unknown-certificate'] ?? false,
    maxBackoff: 1000,
    nodes: [{ nodeId: 'i=84' }],
    ...(values.pki ? { pkiDir: values.pki } : {}),
  });
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new UsageError(`${i.path.join('.') || 'options'}: ${i.message}`);
  }
  const c = parsed.data;
  const pkiDir = pkiDirOf(c, values.data ?? process.env.SLUICE_DATA_DIR ?? '/var/lib/sluice');
  const { client, certificates } = await createClient({ ...c, pkiDir });
  try {
    await client.connect(c.endpoint);
    const session = await client.createSession(userIdentity(c.identity));
    const { nodes, truncated } = await browseTree(session, { node: values.node ?? 'RootFolder', depth, maxNodes });
    await session.close();
    if (values.json) process.stdout.write(`${JSON.stringify({ nodes, truncated }, null, 2)}\n`);
    else {
      for (const n of nodes) {
        const value = n.dataType ? `  ${n.dataType} = ${JSON.stringify(n.value)?.slice(0, 80)}` : '';
        process.stdout.write(`${'  '.repeat(n.depth - 1)}${n.browseName}  [${n.nodeClass}]  ${n.nodeId}${value}\n`);
      }
      if (truncated) process.stdout.write(`... stopped at ${maxNodes} nodes (--max-nodes)\n`);
      process.stdout.write('\nUse nodeId: "<the NodeId>", or browsePath: "/Objects/<ns>:<Name>/..." (the names above) in the driver config.\n');
    }
    return 0;
  } catch (err) {
    process.stderr.write(`sluice opcua browse: ${explainConnectError(err, pkiDir).message}\n`);
    return 1;
  } finally {
    await client.disconnect().catch(() => undefined);
    await certificates.dispose().catch(() => undefined);
  }
}
