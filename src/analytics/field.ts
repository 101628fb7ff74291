/**
 * The number a rule watches in a payload: with a `field`, the value at that
 * path (`value`, `a.b.c`, `readings.0`); without one, a numeric payload itself, or its `value`.
 * Numeric strings and booleans (coils) count as numbers; anything else is "not numeric".
 */
export function fieldReader(field: string | undefined): (payload: unknown) => number | undefined {
  if (field === undefined) {
    return (p) => {
      const direct = toNumber(p);
      if (direct !== undefined) return direct;
      return p !== null && typeof p === 'object' ? toNumber((p as { value?: unknown }).value) : undefined;
    };
  }
  const path = field.split('.');
  return (p) => {
    let cur: unknown = p;
    for (const key of path) {
      if (cur === null || typeof cur !== 'object') return undefined;
      cur = (cur as Record<string, unknown>)[key];
    }
    return toNumber(cur);
  };
}

function toNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}
