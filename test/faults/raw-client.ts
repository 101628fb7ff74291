/**
 * A raw MQTT client for hostile tests: sends exactly the bytes it is given, parses what comes back
 * (mqtt-packet), and can stop reading (a subscriber that never reads) or bind a chosen loopback
 * source address (127.0.0.x, to stand for another host).
 */
import { connect, type Socket } from 'node:net';
import mqttPacket from 'mqtt-packet';

export interface RawClient {
  sock: Socket;
  packets: mqttPacket.Packet[];
  /** Resolves when the connection closes, with the error code if it was an error. */
  closed: Promise<string>;
  isClosed(): boolean;
  send(packet: mqttPacket.Packet): void;
  /** Resolves the next packet of `cmd` (already received ones first), or rejects after `ms`. */
  next(cmd: string, ms?: number): Promise<mqttPacket.Packet>;
}

export function rawConnect(port: number, opts: { localAddress?: string; version?: 4 | 5 } = {}): Promise<RawClient> {
  const version = opts.version ?? 4;
  return new Promise((resolve, reject) => {
    const sock = connect({ port, host: '127.0.0.1', localAddress: opts.localAddress });
    const packets: mqttPacket.Packet[] = [];
    const waiters: { cmd: string; resolve: (p: mqttPacket.Packet) => void }[] = [];
    let consumed = 0;
    let closed = false;
    const parser = mqttPacket.parser({ protocolVersion: version });
    parser.on('packet', (p) => {
      packets.push(p);
      const w = waiters.findIndex((x) => x.cmd === p.cmd);
      if (w >= 0) waiters.splice(w, 1)[0].resolve(p);
    });
    parser.on('error', () => {});
    sock.on('data', (d) => parser.parse(d));
    const closedP = new Promise<string>((r) => {
      sock.on('error', (err: NodeJS.ErrnoException) => {
        closed = true;
        r(err.code ?? 'error');
      });
      sock.on('close', () => {
        closed = true;
        r('close');
      });
    });
    sock.once('error', reject);
    sock.once('connect', () =>
      resolve({
        sock,
        packets,
        closed: closedP,
        isClosed: () => closed,
        send: (p) => sock.write(mqttPacket.generate(p, { protocolVersion: version })),
        next(cmd, ms = 5000) {
          const i = packets.findIndex((p, idx) => idx >= consumed && p.cmd === cmd);
          if (i >= 0) {
            consumed = i + 1;
            return Promise.resolve(packets[i]);
          }
          return new Promise((res, rej) => {
            const t = setTimeout(() => rej(new Error(`no ${cmd} within ${ms} ms`)), ms);
            waiters.push({
              cmd,
              resolve: (p) => {
                clearTimeout(t);
                consumed = packets.length;
                res(p);
              },
            });
          });
        },
      }),
    );
  });
}

export function connectPacket(clientId: string, username?: string, password?: string): mqttPacket.IConnectPacket {
  return {
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 4,
    clean: true,
    clientId,
    keepalive: 60,
    username,
    password: password === undefined ? undefined : Buffer.from(password),
  };
}
