/**
 * The gateway's condition (`/api/status` `condition`, `sluice status`, the dashboard): healthy, or
 * degraded with one sentence per reason. Unlike liveness (liveness.ts) every reason here is about
 * data not flowing as it should while the process itself is fine: restarting would not help.
 *
 * Growth (events refused or evicted for room) is judged between two looks, so the tracker keeps the
 * counts it saw last; a reason of that kind holds for `holdMs` after the last growth, so a status
 * polled twice in quick succession does not flicker.
 */
export interface ConditionInput {
  brokerEnabled: boolean;
  brokerListening: boolean;
  buffer: { bytes: number; maxBytes: number; refused: number; evictedByReason: Record<string, number> } | null;
  uplinks: Array<{
    name: string;
    state: string;
    connected: boolean;
    pendingEvents: number;
    lagSeconds: number;
    lastError: string | null;
    windowOpen: boolean | null;
  }>;
  drivers: Array<{ name: string; devices: Array<{ device: string; state: string; consecutiveFailures: number }> }>;
}

export interface Condition {
  state: 'healthy' | 'degraded';
  reasons: string[];
}

/** Fill of the ring log (of its configured budget) from which it counts as nearly full. */
export const NEAR_FULL = 0.9;
/** A connected uplink whose oldest unsent event is older than this is falling behind. */
export const BEHIND_SECONDS = 300;

export class ConditionTracker {
  private last?: { refused: number; evicted: number };
  private refusedUntil = 0;
  private evictedUntil = 0;
  private refusedRecently = 0;
  private evictedRecently = 0;

  constructor(private readonly holdMs = 60_000) {}

  judge(s: ConditionInput, now = Date.now()): Condition {
    const reasons: string[] = [];
    if (s.brokerEnabled && !s.brokerListening) reasons.push('the MQTT broker is not listening: local devices cannot publish');
    const b = s.buffer;
    if (b) {
      // Retention evictions are the policy working; capacity and disk evictions lose undelivered data.
      const evicted = (b.evictedByReason.capacity ?? 0) + (b.evictedByReason.disk ?? 0);
      if (this.last) {
        if (b.refused > this.last.refused) {
          this.refusedRecently = b.refused - this.last.refused;
          this.refusedUntil = now + this.holdMs;
        }
        if (evicted > this.last.evicted) {
          this.evictedRecently = evicted - this.last.evicted;
          this.evictedUntil = now + this.holdMs;
        }
      }
      this.last = { refused: b.refused, evicted };
      const fill = b.maxBytes > 0 ? b.bytes / b.maxBytes : 0;
      if (fill >= NEAR_FULL) reasons.push(`the ring log is ${Math.floor(fill * 100)}% full: the oldest undelivered events will soon be evicted or new ones refused`);
      if (now < this.refusedUntil) reasons.push(`the ring log refused ${this.refusedRecently} events recently (full, or the disk reserve reached)`);
      if (now < this.evictedUntil) reasons.push(`the ring log evicted ${this.evictedRecently} events recently to make room`);
    }
    for (const u of s.uplinks) {
      if (u.state === 'disabled' || u.state === 'stopped' || u.windowOpen === false) continue;
      const age = fmtAge(u.lagSeconds);
      if (!u.connected && u.pendingEvents > 0) {
        reasons.push(`uplink ${u.name} is down with ${u.pendingEvents} events waiting, the oldest ${age} old${u.lastError ? ` (${u.lastError})` : ''}`);
      } else if (!u.connected) {
        reasons.push(`uplink ${u.name} is down${u.lastError ? ` (${u.lastError})` : ''}`);
      } else if (u.lagSeconds > BEHIND_SECONDS && u.pendingEvents > 0) {
        reasons.push(`uplink ${u.name} is behind: ${u.pendingEvents} events waiting, the oldest ${age} old`);
      }
    }
    for (const d of s.drivers) {
      for (const dev of d.devices) {
        if (dev.state === 'down') reasons.push(`driver ${d.name} device ${dev.device} is down (${dev.consecutiveFailures} failed polls in a row)`);
      }
    }
    return { state: reasons.length ? 'degraded' : 'healthy', reasons };
  }
}

/** `90 s`, `12 min`, `3.5 h`, `2 d`. */
export function fmtAge(seconds: number): string {
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172_800) return `${(seconds / 3600).toFixed(1)} h`;
  return `${Math.round(seconds / 86_400)} d`;
}
