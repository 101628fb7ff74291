/**
 * A real OPC UA server (node-opcua-server) for the driver tests, the end-to-end test and the
 * benchmark. Namespace 1 holds `Plant` with variables of every mapped type:
 *
 *   Temperature (Double, changes every `tickMs`), Counter (Int32, +1 per tick), Flag (Boolean),
 *   Label (String), Stamp (DateTime), Series (Double[3]), Big (Int64), Broken (Double, status
 *   BadSensorFailure), Shaky (Double, status UncertainLastUsableValue), Setpoint (Double, writable),
 *   and `items` more Doubles Item0..ItemN (the benchmark's) that change every tick.
 *
 * Run as a script (compiled, `node dist/test/drivers/opcua-server.js PORT [items]`) it prints
 * "ready" once it serves, for a server in its own process.
 */
import { mkdirSync } from 'node:fs';
import { OPCUACertificateManager } from 'node-opcua-certificate-manager';
import { DataType, MessageSecurityMode, SecurityPolicy, type StatusCode, StatusCodes, Variant, VariantArrayType } from 'node-opcua-client';
import { OPCUAServer } from 'node-opcua-server';

export interface UaServerOptions {
  port: number;
  pkiDir: string;
  /** Sign and SignAndEncrypt with Basic256Sha256 and Aes256_Sha256_RsaPss when set; None otherwise. */
  secure?: boolean;
  /** Users accepted by the username identity. */
  users?: Record<string, string>;
  tickMs?: number;
  items?: number;
}

export interface UaServer {
  endpoint: string;
  /** Changes a variable's value now (and keeps it: the tick leaves it alone from then on). */
  set(name: string, value: number | boolean | string): void;
  get(name: string): unknown;
  stop(): Promise<void>;
}

export async function startUaServer(o: UaServerOptions): Promise<UaServer> {
  mkdirSync(o.pkiDir, { recursive: true });
  const serverCertificateManager = new OPCUACertificateManager({
    rootFolder: o.pkiDir,
    automaticallyAcceptUnknownCertificate: true,
  });
  await serverCertificateManager.initialize();
  // X.509 users: any well-formed user certificate is accepted (the test makes its own).
  const userCertificateManager = new OPCUACertificateManager({
    rootFolder: `${o.pkiDir}/users`,
    automaticallyAcceptUnknownCertificate: true,
  });
  await userCertificateManager.initialize();
  const server = new OPCUAServer({
    port: o.port,
    hostname: '127.0.0.1',
    serverCertificateManager,
    userCertificateManager,
    securityModes: o.secure ? [MessageSecurityMode.Sign, MessageSecurityMode.SignAndEncrypt] : [MessageSecurityMode.None],
    securityPolicies: o.secure ? [SecurityPolicy.Basic256Sha256, SecurityPolicy.Aes256_Sha256_RsaPss] : [SecurityPolicy.None],
    allowAnonymous: !o.users,
    ...(o.users ? { userManager: { isValidUser: (u: string, p: string) => o.users?.[u] === p } } : {}),
    serverInfo: { applicationUri: 'urn:sluice:test-server', productUri: 'sluice-test' },
    maxConnectionsPerEndpoint: 50,
  });
  await server.initialize();
  const space = server.engine.addressSpace!;
  const ns = space.getOwnNamespace();
  const plant = ns.addFolder(space.rootFolder.objects, { browseName: 'Plant', nodeId: 's=Plant' });
  const values: Record<string, { type: DataType; value: unknown; status?: StatusCode; array?: boolean }> = {
    Temperature: { type: DataType.Double, value: 20 },
    Counter: { type: DataType.Int32, value: 0 },
    Flag: { type: DataType.Boolean, value: true },
    Label: { type: DataType.String, value: 'line-1' },
    Stamp: { type: DataType.DateTime, value: new Date('2026-01-02T03:04:05.000Z') },
    Series: { type: DataType.Double, value: [1.5, 2.5, 3.5], array: true },
    Big: { type: DataType.Int64, value: [0x1, 0x2] },
    Broken: { type: DataType.Double, value: 0, status: StatusCodes.BadSensorFailure },
    Shaky: { type: DataType.Double, value: 7.5, status: StatusCodes.UncertainLastUsableValue },
    Setpoint: { type: DataType.Double, value: 50 },
  };
  for (let i = 0; i < (o.items ?? 0); i++) values[`Item${i}`] = { type: DataType.Double, value: i };
  const vars = new Map<string, ReturnType<typeof ns.addVariable>>();
  for (const [name, v] of Object.entries(values)) {
    const variable = ns.addVariable({
      componentOf: plant,
      browseName: name,
      nodeId: `s=${name}`,
      dataType: v.type,
      ...(v.array ? { valueRank: 1, arrayDimensions: [0] } : {}),
      minimumSamplingInterval: 50,
      accessLevel: name === 'Setpoint' ? 'CurrentRead | CurrentWrite' : 'CurrentRead',
      userAccessLevel: name === 'Setpoint' ? 'CurrentRead | CurrentWrite' : 'CurrentRead',
    });
    variable.setValueFromSource(
      new Variant({ dataType: v.type, value: v.value, arrayType: v.array ? VariantArrayType.Array : VariantArrayType.Scalar }),
      v.status ?? StatusCodes.Good,
    );
    vars.set(name, variable);
  }
  let tick = 0;
  // A value set by the test stays until set again (the tick no longer moves it).
  const held = new Set<string>();
  const timer = setInterval(() => {
    tick++;
    if (!held.has('Temperature'))
      vars.get('Temperature')!.setValueFromSource(new Variant({ dataType: DataType.Double, value: 20 + (tick % 10) / 10 }));
    vars.get('Counter')!.setValueFromSource(new Variant({ dataType: DataType.Int32, value: tick }));
    for (let i = 0; i < (o.items ?? 0); i++)
      vars.get(`Item${i}`)!.setValueFromSource(new Variant({ dataType: DataType.Double, value: i + tick }));
  }, o.tickMs ?? 200);
  await server.start();
  return {
    endpoint: `opc.tcp://127.0.0.1:${o.port}`,
    set(name, value) {
      held.add(name);
      const v = vars.get(name)!;
      v.setValueFromSource(new Variant({ dataType: v.dataTypeObj.nodeId.value as number, value }));
    },
    get: (name) => vars.get(name)!.readValue().value.value,
    async stop() {
      clearInterval(timer);
      await server.shutdown(0);
      await serverCertificateManager.dispose();
      await userCertificateManager.dispose();
    },
  };
}

if (process.argv[1]?.endsWith('opcua-server.js')) {
  const port = Number(process.argv[2]);
  const items = Number(process.argv[3] ?? 0);
  const dir = process.argv[4] ?? `/tmp/sluice-ua-pki-${port}`;
  startUaServer({ port, pkiDir: dir, items, tickMs: 1000 }).then(
    () => console.log('ready'),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
