// Which steps a rerun reuses and which it runs again: the failed steps (or the one named), their
// groups, everything downstream of any of those, and whatever did not succeed.
import type { StepRow } from '../db/schema.ts'
import type { Graph } from './graph.ts'
import { ConflictError, ValidationError } from './errors.ts'
import { didYouMean } from './factory.ts'

export interface RetryPlan {
  reuse: Map<string, StepRow>
  failed: string[]
}

export function planRetry(graph: Graph, rows: StepRow[], fromStep?: string): RetryPlan {
  const byId = new Map(rows.map((r) => [r.stepId, r]))
  const failed = rows.filter((r) => r.kind === 'action' && r.status === 'FAILED').map((r) => r.stepId)
  const rerun = new Set<string>()
  // [id, whole]: `whole` reruns a group with all its members (it is the named step, or downstream of
  // a rerun); a group rerun only because a member reruns keeps its other succeeded members.
  const work: [string, boolean][] = []
  const wholeGroups = new Set<string>()
  const add = (id: string, whole: boolean) => {
    if (rerun.has(id) && (!whole || wholeGroups.has(id))) return
    rerun.add(id)
    if (whole) wholeGroups.add(id)
    work.push([id, whole])
  }
  if (fromStep !== undefined) {
    if (!graph.nodes.has(fromStep)) {
      throw new ValidationError(`no step "${fromStep}"`, [{ path: 'fromStep', message: `unknown step "${fromStep}"${didYouMean(fromStep, graph.nodes.keys())}` }])
    }
    add(fromStep, true)
  }
  // A step skipped because its `when` was false (SKIPPED without an error) did not stop its
  // dependents: they ran and are reused. It is evaluated again in the new run, not a rerun seed.
  for (const row of rows) if (row.status !== 'SUCCEEDED' && !(row.status === 'SKIPPED' && !row.error)) add(row.stepId, false)
  if (rerun.size === 0) throw new ConflictError('every step succeeded: name fromStep to run again from a step')
  while (work.length > 0) {
    const [id, whole] = work.pop()!
    const node = graph.nodes.get(id)
    if (!node) continue
    for (const d of node.dependents) add(d, true)
    if (whole) for (const c of node.children) add(c, true)
    if (node.parent) add(node.parent, false)
  }
  const reuse = new Map<string, StepRow>()
  for (const [id, row] of byId) if (!rerun.has(id) && row.status === 'SUCCEEDED') reuse.set(id, row)
  return { reuse, failed }
}
