/**
 * Detector state across a clean restart: written at close, read at start, kept only for rules
 * whose matching, field, detectors and windows are unchanged (`statefulConfig`). Window contents
 * are not kept.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { type CompiledRule, type KeyState, statefulConfig } from './compiled.js';
import { createDetector } from './detectors/index.js';

/** Keys per rule kept across a restart (the most recently seen): bounds the state file. */
const STATE_KEYS = 256;

type SavedRule = { config: string; keys: { topic: string; detectors: unknown[] }[]; vectors?: unknown };

/**
 * Writes the detectors' state (atomically: temp file, then rename), the most recently seen
 * STATE_KEYS keys of each rule. Never throws: a failure is logged and the next start warms up.
 */
export function saveState(file: string, compiled: readonly CompiledRule[], now: number, logger: Logger): void {
  try {
    const rules: Record<string, SavedRule> = {};
    for (const r of compiled) {
      const keys = [...r.keys.values()].sort((a, b) => b.lastUse - a.lastUse).slice(0, STATE_KEYS);
      rules[r.rule.name] = {
        config: statefulConfig(r.rule),
        keys: keys.map((k) => ({ topic: k.topic, detectors: k.detectors.map((d) => d.snapshot()) })),
        ...(r.vector ? { vectors: r.vector.snapshot() } : {}),
      };
    }
    const tmp = `${file}.tmp`;
    writeFileSync(tmp, JSON.stringify({ version: 1, savedAt: now, rules }));
    renameSync(tmp, file);
  } catch (err) {
    logger.warn({ err: (err as Error).message, file }, 'analytics state not saved; detectors will warm up again after a restart');
  }
}

/** Restores the keys of rules whose matching, field, detectors and windows are unchanged. */
export function loadState(
file: string,
compiled: readonly CompiledRule[],
keyOf: (r: CompiledRule, topic: string) => KeyState,
logger: Logger,
): void {
  let saved: { version?: number; rules?: Record<string, SavedRule> };
  try {
    saved = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      logger.warn({ err: (err as Error).message, file }, 'analytics state unreadable; detectors start fresh');
    }
    return;
  }
  if (saved.version !== 1 || !saved.rules) return;
  let restored = 0;
  let refused = 0;
  for (const r of compiled) {
    const entry = saved.rules[r.rule.name];
    if (!entry || entry.config !== statefulConfig(r.rule) || !Array.isArray(entry.keys)) continue;
    if (r.vector) restored += r.vector.restore(entry.vectors);
    for (const k of entry.keys.slice(0, r.rule.maxKeys).reverse()) {
      if (typeof k?.topic !== 'string' || !Array.isArray(k.detectors)) continue;
      const key = keyOf(r, k.topic);
      k.detectors.forEach((snap, i) => {
        if (i >= key.detectors.length) return;
        try {
          key.detectors[i].restore(snap);
          key.detectors[i].resume?.();
        } catch {
          refused++;
          key.detectors[i] = createDetector(r.specs[i]);
        }
      });
      restored++;
    }
  }
  logger.info({ keys: restored, refused, file }, 'analytics state restored');
}
