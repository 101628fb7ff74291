/**
 * The one polling helper of the tests: calls `check` (sync or async) until it returns a truthy
 * value and resolves with that value; a `check` that throws counts as not yet. Throws after
 * `timeoutMs`, naming `what` and the last error. (`waitFor` in gateway.ts and `eventually` in
 * test/drivers/field-peers.ts are this function under the names their tests use.)
 */
type Falsy = undefined | null | false | 0 | '';

export async function until<T>(
  check: () => T | Falsy | Promise<T | Falsy>,
  timeoutMs = 20_000,
  what = 'condition',
  intervalMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
