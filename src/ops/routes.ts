/** The gateway's own HTTP routes (README "HTTP"): /healthz, /api/status, /metrics. */
import type { Registry } from 'prom-client';
import { type HttpServer, sendJson } from '../core/http-server.js';

/** What the routes need of the gateway (src/gateway.ts `Gateway` satisfies it). */
export interface OpsGateway {
  health(): { ok: boolean; reasons: string[] };
  status(): object;
  readonly metrics: { text(): Promise<string> };
  readonly registry: Registry;
}

export function registerOpsRoutes(http: HttpServer, gateway: OpsGateway): void {
  // Liveness only (what systemd and a load balancer act on); the condition is in /api/status.
  http.route('GET', '/healthz', (_req, res) => {
    const { ok, reasons } = gateway.health();
    sendJson(res, ok ? 200 : 503, ok ? { ok: true } : { ok: false, reasons });
  });
  http.route('GET', '/api/status', (_req, res) => sendJson(res, 200, gateway.status()));
  http.route('GET', '/metrics', async (_req, res) => {
    const text = await gateway.metrics.text();
    res.writeHead(200, { 'content-type': gateway.registry.contentType });
    res.end(text);
  });
}
