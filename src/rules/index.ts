/** Rules and complex event processing at the edge (README.md): CEL expressions, drop, derive, patterns. */
export type { DeviceWriter } from './actions.js';
export { type CompiledExpression, compileExpression, isTrue } from './cel.js';
export { type RulesContext, RulesEngine, type RuleStatus } from './engine.js';
export { bind, type RuleEvent } from './event.js';
export { compiled, type RuleConfig, type RulesConfig, rulesSchema } from './schema.js';
