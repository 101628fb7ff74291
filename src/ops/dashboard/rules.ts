/**
 * `GET /api/rules`: each rule with its kind, match count, state held (keys, pending partial matches),
 * evictions, errors and CPU time, for the dashboard's rules table and for tools. The same list is
 * `rules` in `GET /api/status` (and so in the dashboard's stream frames).
 */
import { type HttpServer, sendJson } from '../../core/http-server.js';

export function registerRulesRoute(http: HttpServer, rules: () => object[]): void {
  http.route('GET', '/api/rules', (_req, res) => sendJson(res, 200, { rules: rules() }));
}
