/**
 * Runs a rule's actions for one of its outputs (actions.ts): publish on the local broker and write
 * to a device, each rate-limited; failures are counted and logged, never thrown.
 */
import { fillTopic } from './actions.js';
import { type Bindings, bindingsValue, CelFailure, toJson } from './cel.js';
import type { CompiledRule } from './rule.js';
import type { RuleRunner } from './runner.js';

type Result = 'done' | 'suppressed' | 'failed' | 'unavailable';

export function act(run: RuleRunner, r: CompiledRule, topic: string, payload: object, v: Bindings, first: Bindings | undefined, key: string, wall: number): void {
  const { publish, write } = r.config;
  const { ctx } = run;
  if (publish && r.publishLimit) {
    if (!r.publishLimit.take(wall)) actionResult(run, r, 'publish', 'suppressed');
    else if (!ctx.publishLocal) actionResult(run, r, 'publish', 'unavailable');
    else {
      try {
        ctx.publishLocal(fillTopic(publish.topic, r.name, String(v.topic), key), JSON.stringify(payload));
        actionResult(run, r, 'publish', 'done');
      } catch (err) {
        actionResult(run, r, 'publish', 'failed', (err as Error).message, wall);
      }
    }
  }
  if (write && r.writeLimit && r.writeValue) {
    if (!r.writeLimit.take(wall)) return actionResult(run, r, 'write', 'suppressed');
    const value = r.writeValue.evaluate(first ? { ...v, first: bindingsValue(first) } : v);
    if (value instanceof CelFailure) return run.evalFailed(r, 'write.value', value, topic, wall);
    const writer = ctx.writer;
    if (!writer) {
      actionResult(run, r, 'write', 'unavailable');
      return run.logOnce(r, 'no-writer', wall, { target: write.target }, `rule "${r.name}": no device write path is configured; the write to ${write.target} was not done`);
    }
    const target = write.target.replaceAll('{rule}', r.name).replaceAll('{key}', key);
    writer.write(target, toJson(value), { rule: r.name, key }).then(
      () => actionResult(run, r, 'write', 'done'),
      (err) => actionResult(run, r, 'write', 'failed', (err as Error).message, run.now()),
    );
  }
}

function actionResult(run: RuleRunner, r: CompiledRule, action: 'publish' | 'write', result: Result, err?: string, wall = 0): void {
  const c = r.counters;
  if (result === 'done' && action === 'publish') c.published++;
  else if (result === 'done') c.written++;
  else if (result === 'suppressed') c.suppressed++;
  else if (result === 'unavailable') c.unavailable++;
  else {
    c.actionFailures++;
    run.logOnce(r, `${action}-failed`, wall, { err }, `rule "${r.name}": ${action} failed`);
  }
  run.metrics.actions.inc({ rule: r.name, action, result });
}
