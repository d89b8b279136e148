// Params that callers give are data, never templates: retryRun's edited params (an execute-scope
// caller) and bound params (start params, a sub-workflow's params, a template's instantiation
// params). Only a definition's own strings are expressions. RunExecution resolves `{{ }}` in
// whatever params a step starts from (`stepParams[id] ?? def.params ?? boundParams`), so those given
// as data reach it escaped (literalTemplates): resolving them gives the caller's values back as they are.
import { hasExpression, literalTemplates } from './expressions.ts'
import type { Graph } from './graph.ts'

type StepParams = Record<string, Record<string, unknown>>

/** retryRun's edit for one step, as it is stored with the run: escaped once, here. */
export function editedStepParams(stored: StepParams | undefined, stepId: string, params: Record<string, unknown>): StepParams {
  return { ...stored, [stepId]: literalTemplates(params) }
}

/**
 * The run spec's `stepParams`: the stored edits, and for every step without params of its own the
 * bound params escaped (they stay as given in the `params` scope). Not stored: derived per execution.
 */
export function stepParamsForRun(graph: Graph, boundParams: Record<string, unknown> | undefined, stored: StepParams | undefined): StepParams | undefined {
  if (!boundParams || !hasExpression(boundParams)) return stored
  const literal = literalTemplates(boundParams)
  const out: StepParams = {}
  for (const node of graph.ordered) if (node.def.params === undefined) out[node.id] = literal
  return { ...out, ...stored }
}
