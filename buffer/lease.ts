/**
 * The seq lease (buffer/SPEC.md "Atomicity and recovery"): a small fsynced file holding a seq above
 * every seq the log ever made durable. It matters only when the database is lost (repaired with
 * records dropped, or moved aside): the rebuilt log continues at the lease, so no seq is reused.
 *
 * The lease grows with need: it starts a small step ahead of nextSeq and the step doubles each time
 * the lease is renewed soon after the previous renewal (a busy log), up to a million, and halves
 * again when renewals are far apart. So a lost database leaves a gap of at most one step, small on
 * a quiet log, and a busy log renews it rarely. A start, failed or not, renews it only when
 * nextSeq came within half a step of it.
 */
import { open, readFile, rename, writeFile } from 'node:fs/promises';

export const LEASE_MIN_STEP = 10_000;
export const LEASE_MAX_STEP = 1_000_000;
/** Renewals closer together than this double the step; further apart than ten times this halve it. */
const BUSY_MS = 60_000;

export class SeqLease {
  /** Every seq made durable is below this. */
  value = 1;
  step = LEASE_MIN_STEP;
  private renewedAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly file: string) {}

  /** Reads the lease file (1 when there is none or it does not parse). */
  async read(): Promise<number> {
    try {
      const n = Number((await readFile(this.file, 'utf8')).trim());
      this.value = Number.isSafeInteger(n) && n > 0 ? n : 1;
    } catch {
      this.value = 1;
    }
    return this.value;
  }

  /** True when seqs up to `nextSeq` need the lease renewed before they are made durable. */
  due(nextSeq: number): boolean {
    return nextSeq + this.step / 2 >= this.value;
  }

  /** Writes a lease one step above `nextSeq` (fsynced, then renamed into place). */
  async renew(nextSeq: number, now = performance.now()): Promise<void> {
    const since = now - this.renewedAt;
    if (since < BUSY_MS) this.step = Math.min(LEASE_MAX_STEP, this.step * 2);
    else if (since > 10 * BUSY_MS && Number.isFinite(since)) this.step = Math.max(LEASE_MIN_STEP, this.step / 2);
    this.renewedAt = now;
    const value = Math.max(this.value, nextSeq + this.step);
    const tmp = `${this.file}.tmp`;
    await writeFile(tmp, `${value}\n`);
    const fh = await open(tmp, 'r+');
    await fh.sync();
    await fh.close();
    await rename(tmp, this.file);
    this.value = value;
  }
}
