/**
 * Canonical JSON: the one byte sequence a signer and a verifier both derive from the same value, so
 * a signature does not depend on key order or whitespace. Object keys are sorted by UTF-16 code
 * units, there is no whitespace, strings and numbers are written as JSON.stringify writes them (the
 * ECMAScript number form that RFC 8785 also uses). Object members whose value is `undefined` are
 * left out (as JSON.stringify does); anything JSON cannot carry (NaN, Infinity, bigint, functions,
 * `undefined` in an array or at the top) throws, so two different values never share an encoding.
 */
export function canonicalJson(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`${value} has no JSON form`);
      return JSON.stringify(value);
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(',')}]`;
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj)
        .filter((k) => obj[k] !== undefined)
        .sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
    }
    default:
      throw new TypeError(`a ${typeof value} has no JSON form`);
  }
}
