// forEach steps: the step's list is evaluated when it is ready, and it fans out into one action
// step per item (`id[0]`, `id[1]`, ...), its members, made at run time (so they are not in the
// graph the run shares with others). It settles like a group, with its items' outputs in order.
import type { StepDefinition, StepStatus } from './interfaces.ts'
import type { GraphNode } from './graph.ts'
import type { StepRecorder } from './step-recorder.ts'
import type { StepState } from './step-state.ts'
import { evaluateExpression } from './expressions.ts'

/** Items one forEach may fan out into. */
export const MAX_FOR_EACH_ITEMS = 100_000

/** What forEach steps need of the run they belong to. */
export interface ForEachRun {
  moveTo(state: StepState, to: StepStatus): void
  /** A step made at run time (an item) joins the run's steps, unsettled. */
  addStep(state: StepState): void
  /** Starts the members of a RUNNING group or forEach, or settles it at once if it has none. */
  startMembers(state: StepState): void
}

/** The forEach's list: an array in the definition or an expression's value. */
export async function forEachItems(forEach: string | unknown[], scope: object): Promise<unknown[]> {
  const list = Array.isArray(forEach) ? forEach : await evaluateExpression(forEach, scope)
  // JSONata gives a single value for a one-item sequence; nothing at all for none.
  const items = list === undefined || list === null ? [] : Array.isArray(list) ? list : [list]
  if (items.length > MAX_FOR_EACH_ITEMS) throw new Error(`${items.length} items exceed the limit of ${MAX_FOR_EACH_ITEMS}`)
  return items
}

export class ForEachSteps {
  constructor(
    private readonly run: ForEachRun,
    private readonly rec: StepRecorder,
  ) {}

  /** One action step per item (`id[0]`, `id[1]`, ...) with its resolved params, children of the forEach step. */
  expand(state: StepState, params: Record<string, unknown>[]): void {
    this.run.moveTo(state, 'RUNNING')
    state.startedAt = Date.now()
    const ids = params.map((_, i) => `${state.node.id}[${i}]`)
    const rows = ids.map((id, i) => ({
      stepId: id, parentStepId: state.node.id, kind: 'action', factory: state.node.factory, action: state.node.action, params: params[i],
    }))
    this.rec.groupStarted(state, state.startedAt, { items: ids.length }, rows)
    ids.forEach((id, i) => this.addItem(state, id, params[i]!))
    this.run.startMembers(state)
  }

  /** An item of `parent` (also one rebuilt from its row after a restart). */
  addItem(parent: StepState, id: string, params: Record<string, unknown>): StepState {
    const def = parent.node.def
    const node: GraphNode = {
      id, path: `${parent.node.path}.forEach`, kind: 'action', parent: parent.node.id, factory: parent.node.factory, action: parent.node.action,
      // The item inherits the forEach step's own settings, its named pools included.
      // Everything of the forEach step but what makes it a fan-out (its list, when, deps, params, limit).
      def: itemDefinition(def),
      deps: [], dependents: [], children: [], previous: parent.node.previous, order: parent.node.order,
    }
    const item: StepState = {
      node, status: 'PENDING', attempts: 0, output: undefined, error: undefined, remaining: 0, childrenLeft: 0, upstreamFailed: false,
      memberFailed: false, params, preparing: false, admitting: false, token: 0, fixedParams: params,
    }
    this.run.addStep(item)
    ;(parent.items ??= []).push(id)
    parent.childrenLeft++
    return item
  }
}

/** An item of a forEach is the same action step without the fan-out. */
function itemDefinition(def: StepDefinition): StepDefinition {
  const { forEach: _list, when: _when, dependsOn: _deps, params: _params, maxParallel: _limit, id: _id, ...item } = def
  return item
}
