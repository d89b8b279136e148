// Validation of a definition before anything is stored. Every problem is reported at once, each
// with a path: shape, ids, dependencies and cycles, factories and actions (with a did-you-mean),
// expressions, and literal params against the action's input schema. The cost is linear in the
// definition's size, whatever it holds (definition-limits.ts): a read token can ask for it.
import type { ZodType } from 'zod'
import type { StepDefinition, ValidationIssue, ValidationResult, WorkflowDefinition } from './interfaces.ts'
import { workflowSchema, formatPath } from './definition.ts'
import { compileGraph, type Graph } from './graph.ts'
import { bareExpressionIssue, expressionIssues, hasExpression } from './expressions.ts'
import type { FactoryRegistry } from './factory.ts'
import { inputIssues } from './run-input.ts'
import { pathDeeperThan } from './depth.ts'
import { capIssues, hasTooManySteps, suggestionBudget, tooManyStepsIssue, type Suggest } from './definition-limits.ts'
import { protoKeyIssues } from './reserved-names.ts'

export interface ValidateOptions {
  /** Without a registry, factory and action names are not checked (a stand-alone WorkflowManager). */
  registry?: FactoryRegistry
  /** Templates bind params later: steps without params are not checked against their schema yet. */
  paramsBoundLater?: boolean
  /** Params bound by createFromTemplate, given to every step that has none. */
  boundParams?: Record<string, unknown>
  /** Whether a template exists (sub-workflow steps name one); unchecked when absent. */
  templateExists?: (name: string) => boolean
  /** Names of the configured pools steps may name; unchecked when absent. */
  poolNames?: readonly string[]
}

export interface Validated {
  result: ValidationResult
  definition?: WorkflowDefinition
  graph?: Graph
}

/** Objects and arrays within each other, at most: the checks below recurse, and no real definition comes near it. */
export const MAX_DEFINITION_DEPTH = 64

export function validateDefinition(input: unknown, options: ValidateOptions = {}): Validated {
  const deep = pathDeeperThan(input, MAX_DEFINITION_DEPTH)
  if (deep) return { result: { valid: false, issues: [{ path: formatPath(deep), message: `nested more than ${MAX_DEFINITION_DEPTH} levels deep` }] } }
  if (hasTooManySteps(input)) return { result: { valid: false, issues: [tooManyStepsIssue()] } }
  const suggest = suggestionBudget()
  // Looked for before parsing: the parse drops a `__proto__` key of params without a word.
  const reserved = protoKeyIssues(input)
  const parsed = workflowSchema.safeParse(input)
  if (!parsed.success) {
    const issues = [...reserved, ...parsed.error.issues.map((i) => ({ path: formatPath(i.path), message: i.message }))]
    // The names are checked too, so that a typo is not reported only after the shape is fixed.
    if (options.registry) append(issues, unknownNameIssues(input, options.registry, suggest))
    return { result: { valid: false, issues: capIssues(issues) } }
  }
  const checked = checkDefinition(parsed.data, options, suggest)
  const issues = reserved.length > 0 ? [...reserved, ...checked.issues] : checked.issues
  const result = { valid: issues.length === 0, issues: capIssues(issues) }
  return result.valid ? { result, definition: parsed.data, graph: checked.graph } : { result }
}

/** The checks of a parsed definition; inline sub-workflows (parsed with it) are checked in place, not parsed again. */
function checkDefinition(definition: WorkflowDefinition, options: ValidateOptions, suggest: Suggest): { issues: ValidationIssue[]; graph: Graph } {
  const { graph, issues } = compileGraph(definition, suggest)
  const { registry } = options
  const listed = definition.factories ? new Set(definition.factories) : undefined

  if (definition.factories && registry) {
    definition.factories.forEach((name, i) => {
      if (!registry.has(name)) {
        issues.push({ path: `factories[${i}]`, message: `unknown factory "${name}"${suggest(name, registry.names())}` })
      }
    })
  }
  if (definition.input) append(issues, inputIssues(definition.input))
  append(issues, expressionIssues(definition.output, 'output'))

  for (const node of graph.ordered) {
    const def = node.def
    const at = node.path
    if (def.template !== undefined || def.workflow !== undefined) {
      append(issues, subWorkflowIssues(def, at, options, suggest))
      continue
    }
    if (def.forEach !== undefined) {
      if (def.steps || !def.factory || !def.action) issues.push({ path: `${at}.forEach`, message: 'forEach applies to a step with factory and action' })
      if (typeof def.forEach === 'string') {
        const problem = bareExpressionIssue(def.forEach)
        if (problem) issues.push({ path: `${at}.forEach`, message: problem })
      }
    }
    if (node.kind === 'group') {
      if (def.factory || def.action) issues.push({ path: at, message: 'a step has either factory/action or nested steps, not both' })
    } else if (!def.factory || !def.action) {
      issues.push({ path: at, message: 'a step needs "factory" and "action" (or nested "steps")' })
    }
    if (def.pool !== undefined && options.poolNames) {
      for (const name of Array.isArray(def.pool) ? def.pool : [def.pool]) {
        if (!options.poolNames.includes(name)) {
          issues.push({ path: `${at}.pool`, message: `pool "${name}" is not configured${suggest(name, options.poolNames)}` })
        }
      }
    }
    if (typeof def.when === 'string') {
      const problem = bareExpressionIssue(def.when)
      if (problem) issues.push({ path: `${at}.when`, message: problem })
    }
    append(issues, expressionIssues(def.params, `${at}.params`))
    if ((node.kind !== 'action' && node.kind !== 'forEach') || !def.factory || !def.action) continue

    if (listed && !listed.has(def.factory)) {
      issues.push({ path: `${at}.factory`, message: `factory "${def.factory}" is not listed in "factories"` })
    }
    if (!registry) continue
    const factory = registry.get(def.factory)
    if (!factory) {
      issues.push({ path: `${at}.factory`, message: `unknown factory "${def.factory}"${suggest(def.factory, registry.names())}` })
      continue
    }
    const action = factory.actions.get(def.action)
    if (!action) {
      issues.push({
        path: `${at}.action`,
        message: `factory "${def.factory}" has no action "${def.action}"${suggest(def.action, factory.actions.keys())}`,
      })
      continue
    }
    const schema = action.definition.input
    if (!schema) continue
    const params = def.params ?? options.boundParams
    if (params === undefined && options.paramsBoundLater) continue
    append(issues, literalParamIssues(schema, params ?? {}, `${at}.params`))
  }
  return { issues, graph }
}
/** Unknown factories and actions of a definition whose shape is wrong: every step (nested too) that names them as strings. */
function unknownNameIssues(input: unknown, registry: FactoryRegistry, suggest: Suggest): ValidationIssue[] {
  const issues: ValidationIssue[] = []
  const walk = (steps: unknown, at: string): void => {
    if (!Array.isArray(steps)) return
    steps.forEach((step: unknown, i) => {
      if (!step || typeof step !== 'object') return
      const { factory, action, steps: nested } = step as { factory?: unknown; action?: unknown; steps?: unknown }
      const path = `${at}[${i}]`
      walk(nested, `${path}.steps`)
      if (typeof factory !== 'string' || factory === '') return
      const known = registry.get(factory)
      if (!known) issues.push({ path: `${path}.factory`, message: `unknown factory "${factory}"${suggest(factory, registry.names())}` })
      else if (typeof action === 'string' && action !== '' && !known.actions.has(action)) {
        issues.push({ path: `${path}.action`, message: `factory "${factory}" has no action "${action}"${suggest(action, known.actions.keys())}` })
      }
    })
  }
  if (input && typeof input === 'object') walk((input as { steps?: unknown }).steps, 'steps')
  return issues
}

/** Params that hold no expression are checked whole; otherwise each literal top-level field alone. */
function literalParamIssues(schema: ZodType, params: Record<string, unknown>, path: string): ValidationIssue[] {
  if (!hasExpression(params)) {
    const r = schema.safeParse(params)
    return r.success ? [] : r.error.issues.map((i) => ({ path: formatPath(i.path, path), message: i.message }))
  }
  const shape = (schema as { shape?: Record<string, ZodType> }).shape
  if (!shape) return []
  const issues: ValidationIssue[] = []
  for (const [key, value] of Object.entries(params)) {
    const field = shape[key]
    if (!field || hasExpression(value)) continue
    const r = field.safeParse(value)
    if (!r.success) append(issues, r.error.issues.map((i) => ({ path: formatPath(i.path, `${path}.${key}`), message: i.message })))
  }
  return issues
}

/** A sub-workflow step names a template that exists, or holds a valid inline workflow. */
function subWorkflowIssues(def: StepDefinition, at: string, options: ValidateOptions, suggest: Suggest): ValidationIssue[] {
  const issues: ValidationIssue[] = []
  if (def.template !== undefined && def.workflow !== undefined) issues.push({ path: at, message: 'give either template or workflow, not both' })
  if (def.factory || def.action || def.steps || def.forEach !== undefined) {
    issues.push({ path: at, message: 'a sub-workflow step has no factory, action, steps or forEach' })
  }
  if (def.template !== undefined && options.templateExists && !options.templateExists(def.template)) {
    issues.push({ path: `${at}.template`, message: `unknown template "${def.template}"` })
  }
  append(issues, expressionIssues(def.params, `${at}.params`))
  if (def.workflow !== undefined) {
    const inner = checkDefinition(def.workflow, { registry: options.registry, templateExists: options.templateExists, poolNames: options.poolNames }, suggest)
    for (const issue of inner.issues) issues.push({ path: `${at}.workflow.${issue.path}`, message: issue.message })
  }
  return issues
}

/** `issues.push(...more)` passes every issue as an argument: past ~100,000 of them that overflows the stack. */
function append(issues: ValidationIssue[], more: readonly ValidationIssue[]): void {
  for (const issue of more) issues.push(issue)
}
