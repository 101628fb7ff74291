/**
 * Rule expressions in CEL (cel.dev), by `@bufbuild/cel`: bounded by design (no loops beyond
 * comprehensions over finite lists, no recursion, no I/O), so a rule's cost per event is bounded.
 *
 * An expression is parsed and planned once, at config load; `compileExpression` also rejects names
 * the expression could never see (a typo like `paylod.value` is a config error, not an evaluation
 * error on every event). Evaluation never throws for data: a CEL error (a missing field, a type
 * mismatch) comes back as `CelFailure`, which the engine counts and treats as "no match".
 *
 * Numbers: JSON has one number type, and every number an event carries (payload fields, `ts`,
 * `seq`) is a CEL `double`. CEL compares numbers across types by value, so `payload.value >= 30`,
 * `>= 30.0` and `== 30` all hold for `{"value": 30}`; arithmetic does not mix types, so write
 * `payload.v * 2.0` (not `* 2`), or convert with `int()`/`double()`.
 */
import { CelScalar, type CelValue, celEnv, celList, celMap, isCelError, isCelList, isCelMap, isCelUint, parse, plan } from '@bufbuild/cel';
import { strings } from '@bufbuild/cel/ext';

/** The names every expression sees: one event. */
export const EVENT_VARIABLES = ['topic', 'source', 'payload', 'kind', 'ts', 'seq', 'deviceTs', 'segments', 'meta'] as const;

/** Names a rule part adds to the event's: `first` (later steps of a sequence), `window` (a count's `having`). */
export type ExtraVariable = 'first' | 'window';

const ALL = [...EVENT_VARIABLES, 'first', 'window'];
const env = celEnv({
  variables: Object.fromEntries(ALL.map((n) => [n, CelScalar.DYN])),
  funcs: strings,
});

/** The bindings of one evaluation (built once per event and shared by every rule). */
export type Bindings = Record<string, unknown>;

export class CelFailure {
  constructor(readonly message: string) {}
}

export interface CompiledExpression {
  readonly source: string;
  /** The value, or a CelFailure (never throws for data). */
  evaluate(vars: Bindings): unknown;
}

/** Compiles `source`; throws an Error whose message is one sentence for `sluice validate`. */
export function compileExpression(source: string, extra: readonly ExtraVariable[] = []): CompiledExpression {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(source);
  } catch (err) {
    throw new Error(`is not a CEL expression: ${firstLine((err as Error).message)}`);
  }
  const allowed = new Set<string>([...EVENT_VARIABLES, ...extra]);
  const unknown = freeNames(parsed.expr).filter((n) => !allowed.has(n));
  if (unknown.length > 0) {
    const hint = unknown.includes('first')
      ? ' (`first` exists only in the later steps of a sequence)'
      : unknown.includes('window')
        ? ' (`window` exists only in a count rule\'s `having`)'
        : '';
    throw new Error(
      `uses unknown name${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => `"${n}"`).join(', ')}${hint}; an expression sees ${[...allowed].join(', ')}`,
    );
  }
  let run: (vars: Bindings) => unknown;
  try {
    run = plan(env, parsed) as unknown as (vars: Bindings) => unknown;
  } catch (err) {
    throw new Error(`cannot be planned: ${firstLine((err as Error).message)}`);
  }
  return {
    source,
    evaluate(vars) {
      const v = run(vars);
      return isCelError(v) ? new CelFailure(v.message) : v;
    },
  };
}

/**
 * A JS value as CEL sees it, converted once: the evaluator otherwise rebuilds a plain object's map
 * on every access, in every expression (test/bench/README.md has the cost). Shallow: nested objects
 * are converted when an expression reaches them.
 */
export function celValue(v: unknown): unknown {
  if (v === undefined) return null;
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return celList(v);
  if (v.constructor === Object) return celMap(new Map(Object.entries(v)));
  return v;
}

const asMap = new WeakMap<Bindings, unknown>();

/** An event's bindings as a CEL map (`first`), converted once per event. */
export function bindingsValue(b: Bindings): unknown {
  let m = asMap.get(b);
  if (m === undefined) {
    m = celMap(new Map(Object.entries(b)) as never);
    asMap.set(b, m);
  }
  return m;
}

/** True only for CEL `true`; anything else (false, a non-bool, a failure) is not a match. */
export function isTrue(v: unknown): boolean {
  return v === true;
}

/** A CEL result as plain JSON-able JS: int/uint become numbers, lists arrays, maps objects. */
export function toJson(v: unknown): unknown {
  if (v === null || typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'bigint') return Number(v);
  if (isCelUint(v)) return Number(v.value);
  if (isCelList(v)) return [...v].map((x) => toJson(x));
  if (isCelMap(v)) {
    const o: Record<string, unknown> = {};
    for (const [k, x] of v) o[String(isCelUint(k) ? k.value : k)] = toJson(x);
    return o;
  }
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  // Plain JS values handed in as bindings come back as they are (a payload object, an array).
  if (Array.isArray(v) || (typeof v === 'object' && v !== undefined)) return v;
  return String(v as CelValue);
}

/** A key's string form: strings as they are, numbers without a trailing `.0`. */
export function keyString(v: unknown): string {
  const j = toJson(v);
  return typeof j === 'string' ? j : JSON.stringify(j);
}

type Expr = ReturnType<typeof parse>['expr'];

/** Identifiers an expression reads that are not bound inside it (comprehension variables are). */
function freeNames(root: Expr): string[] {
  const out = new Set<string>();
  const walk = (e: Expr | undefined, bound: ReadonlySet<string>): void => {
    if (!e) return;
    const k = e.exprKind;
    switch (k.case) {
      case 'identExpr':
        if (!bound.has(k.value.name)) out.add(k.value.name);
        return;
      case 'selectExpr':
        return walk(k.value.operand, bound);
      case 'callExpr':
        walk(k.value.target, bound);
        for (const a of k.value.args) walk(a, bound);
        return;
      case 'listExpr':
        for (const a of k.value.elements) walk(a, bound);
        return;
      case 'structExpr':
        for (const en of k.value.entries) {
          if (en.keyKind.case === 'mapKey') walk(en.keyKind.value, bound);
          walk(en.value, bound);
        }
        return;
      case 'comprehensionExpr': {
        const c = k.value;
        walk(c.iterRange, bound);
        walk(c.accuInit, bound);
        const inner = new Set([...bound, c.iterVar, c.iterVar2, c.accuVar].filter(Boolean));
        walk(c.loopCondition, inner);
        walk(c.loopStep, inner);
        walk(c.result, inner);
        return;
      }
      default:
        return;
    }
  };
  walk(root, new Set());
  return [...out];
}

function firstLine(s: string): string {
  return s.split('\n')[0].replace(/^<input>:/, 'at ');
}
