/**
 * The suite's report: each test file records its figures here (one JSON line per record, in a file
 * the global setup names), and the global teardown adds them up and prints the report at the end
 * of `npm run test:faults` (and writes it as JSON to $SLUICE_FAULTS_REPORT_OUT when that is set).
 */
import { appendFileSync } from 'node:fs';

export interface Figures {
  /** Fuzz cases and hostile actions tried. */
  cases?: number;
  /** Faults injected (network cuts, resets, blackholes, broker restarts, signals). */
  faults?: number;
  /** QoS 1 publishes the gateway acknowledged (PUBACK). */
  acknowledged?: number;
  /** Acknowledged events seen at the upstream broker (or in the ring log). */
  delivered?: number;
  /** Acknowledged events never delivered. */
  lost?: number;
  /** Deliveries of an event already delivered (at-least-once). */
  duplicates?: number;
  /** Highest RssAnon of the gateway process, KiB. */
  peakRssKb?: number;
  [detail: string]: unknown;
}

export const REPORT_ENV = 'SLUICE_FAULTS_REPORT_FILE';

export function record(section: string, figures: Figures): void {
  const file = process.env[REPORT_ENV];
  const line = `${JSON.stringify({ section, ...figures })}\n`;
  if (file) appendFileSync(file, line);
  else process.stdout.write(`[faults report] ${line}`);
}
