/**
 * The dry run of a config before it is applied: opens what can be opened without disturbing the
 * running gateway. A listen address that is not already ours must be free (bind and close at once),
 * a serial device path must exist, every TLS file must be readable. Returns one sentence per
 * problem; an empty list means go.
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { Config } from '../config/schema.js';

interface Listen {
  what: string;
  host: string;
  port: number;
}

function listens(config: Config): Listen[] {
  const out: Listen[] = [];
  if (config.broker.enabled) {
    config.broker.listeners.forEach((l, i) => {
      out.push({ what: `broker.listeners[${i}]`, host: l.host, port: l.port });
    });
  }
  if (config.http.enabled) out.push({ what: 'http', host: config.http.host, port: config.http.port });
  return out;
}

async function canListen(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => resolve(undefined)));
  });
}

export async function dryRun(next: Config, running: Config): Promise<string[]> {
  const problems: string[] = [];
  const ours = new Set(listens(running).map((l) => `${l.host}:${l.port}`));
  const seen = new Set<string>();
  for (const l of listens(next)) {
    const addr = `${l.host}:${l.port}`;
    if (l.port !== 0 && seen.has(addr)) problems.push(`${l.what}: ${addr} is used twice in the new config`);
    seen.add(addr);
    if (l.port === 0 || ours.has(addr)) continue;
    const err = await canListen(l.host, l.port);
    if (err) problems.push(`${l.what}: cannot listen on ${addr} (${err})`);
  }
  for (const [i, d] of next.drivers.entries()) {
    if (d.enabled === false || (d.type !== 'serial' && d.type !== 'modbus-rtu')) continue;
    try {
      await stat(d.path);
    } catch (err) {
      problems.push(
        `drivers[${i}].path: serial device "${d.path}" does not exist (${(err as NodeJS.ErrnoException).code})`,
      );
    }
  }
  const files: [string, string | undefined][] = [];
  next.broker.listeners.forEach((l, i) => {
    if (l.tls)
      for (const k of ['cert', 'key', 'ca'] as const) files.push([`broker.listeners[${i}].tls.${k}`, l.tls[k]]);
  });
  next.uplinks.forEach((u, i) => {
    const tls = (u as { tls?: Record<string, unknown> }).tls;
    if (tls)
      for (const k of ['ca', 'cert', 'key']) files.push([`uplinks[${i}].tls.${k}`, tls[k] as string | undefined]);
  });
  for (const [where, path] of files) {
    if (path === undefined) continue;
    try {
      await access(path, constants.R_OK);
    } catch (err) {
      problems.push(`${where}: cannot read "${path}" (${(err as NodeJS.ErrnoException).code})`);
    }
  }
  return problems;
}
