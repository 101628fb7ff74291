/**
 * `sluice status [--url URL]`: prints the running gateway's state (reads `GET /api/status`).
 * Exit 0 healthy, 3 degraded (the reasons are printed), 4 no gateway answers, 1 another failure.
 */
import { fmtAge } from '../../ops/condition.js';
import { parseFlags } from '../args.js';

export default async function status(args: string[]): Promise<number> {
  const { values } = parseFlags(args, { url: { type: 'string' }, json: { type: 'boolean' } });
  const base = values.url ?? process.env.SLUICE_URL ?? 'http://127.0.0.1:8080';
  let body: StatusBody;
  try {
    const res = await fetch(new URL('/api/status', base), { signal: AbortSignal.timeout(5000) });
    if (!res.ok) {
      process.stderr.write(`sluice status: ${base} answered ${res.status} ${res.statusText}\n`);
      return 1;
    }
    body = (await res.json()) as StatusBody;
  } catch (err) {
    process.stderr.write(
      `sluice status: no gateway answers at ${base} (${(err as Error).cause ?? (err as Error).message}); is it running? (--url to point elsewhere)\n`,
    );
    return EXIT_UNREACHABLE;
  }
  const degraded = body.condition?.state === 'degraded' || body.health?.ok === false;
  const code = degraded ? EXIT_DEGRADED : 0;
  if (values.json) {
    process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
    return code;
  }
  const reasons = [...(body.health?.ok === false ? (body.health.reasons ?? []) : []), ...(body.condition?.reasons ?? [])];
  const b = body.buffer;
  const lines = [
    `gateway   ${body.gateway.id} ${body.gateway.version}, up ${body.gateway.uptimeSeconds}s, process ${body.health?.ok === false ? 'FAILING' : 'alive'}`,
    `condition ${degraded ? 'DEGRADED' : 'healthy'}`,
    ...reasons.map((r) => `  - ${r}`),
    `ingest    ${body.ingest.received} received, ${body.ingest.rejected} rejected`,
    b
      ? `buffer    ${b.events} events, ${fmtBytes(b.bytes)} of ${fmtBytes(b.maxBytes)}, ${b.evicted} evicted, oldest ${b.oldestTs ? new Date(b.oldestTs).toISOString() : '-'}`
      : 'buffer    closed',
    ...body.uplinks.map(
      (u) =>
        `uplink    ${u.name} (${u.type}) ${u.connected ? 'connected' : 'DISCONNECTED'}, lag ${u.pendingEvents} events${u.pendingEvents > 0 ? ` (oldest unsent ${fmtAge(u.lagSeconds ?? 0)} old)` : ''}, ${u.deliveredEvents} delivered${u.lastError ? `, last error: ${u.lastError}` : ''}`,
    ),
    ...(body.drivers ?? []).flatMap((d) =>
      d.devices.map(
        (dev) => `driver    ${d.name}/${dev.device} ${dev.state}, ${dev.consecutiveFailures} consecutive failures`,
      ),
    ),
    `anomalies ${body.anomalies.total}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  return code;
}

const EXIT_DEGRADED = 3;
const EXIT_UNREACHABLE = 4;

function fmtBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
}

interface StatusBody {
  gateway: { id: string; version: string; uptimeSeconds: number };
  health?: { ok: boolean; reasons?: string[] };
  condition?: { state: 'healthy' | 'degraded'; reasons: string[] };
  ingest: { received: number; rejected: number };
  buffer: { events: number; bytes: number; maxBytes: number; evicted: number; oldestTs: number | null } | null;
  uplinks: {
    name: string;
    type: string;
    connected: boolean;
    pendingEvents: number;
    lagSeconds?: number;
    deliveredEvents: number;
    lastError?: string;
  }[];
  drivers?: { name: string; devices: { device: string; state: string; consecutiveFailures: number }[] }[];
  anomalies: { total: number };
}
