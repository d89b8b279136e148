// Turns a definition into the run graph: every step (nested groups flattened) keyed by a stable
// path, with its dependencies resolved. Sequential levels chain steps n-1 → n; `dependsOn` always wins.
import type { StepDefinition, ValidationIssue, WorkflowDefinition } from './interfaces.ts'
import { suggestionBudget, type Suggest } from './definition-limits.ts'
import { RESERVED_STEP_IDS, reservedStepIdMessage } from './reserved-names.ts'

/** `forEach` fans out into one action per item at run time; `subworkflow` starts a child run. */
export type NodeKind = 'action' | 'group' | 'forEach' | 'subworkflow'

export interface GraphNode {
  /** Full path: `analyze`, `publish.upload`. */
  id: string
  /** Path of the definition this node came from, for error messages: `steps[1].steps[0]`. */
  path: string
  kind: NodeKind
  parent: string | null
  def: StepDefinition
  factory: string | null
  action: string | null
  deps: string[]
  dependents: string[]
  children: string[]
  /** The node whose output is `previous` (the single dependency), if any. */
  previous: string | null
  /** Declaration order, used for stable ordering. */
  order: number
}

export interface Graph {
  nodes: Map<string, GraphNode>
  /** Top-level nodes nothing depends on: their outputs form the default run output. */
  leaves: string[]
  /** Nodes in declaration order (parents before children). */
  ordered: GraphNode[]
}

/** `suggest` adds a did-you-mean to unknown ids; validation shares its budget across the whole definition. */
export function compileGraph(definition: WorkflowDefinition, suggest: Suggest = suggestionBudget()): { graph: Graph; issues: ValidationIssue[] } {
  const issues: ValidationIssue[] = []
  const nodes = new Map<string, GraphNode>()
  const ordered: GraphNode[] = []
  // Sibling scopes: explicit dependsOn resolves against siblings first, then against full paths.
  const pendingDeps: { node: GraphNode; names: string[]; siblings: Map<string, string> }[] = []

  const addLevel = (defs: StepDefinition[], parent: GraphNode | null, parallel: boolean, pathPrefix: string) => {
    const siblings = new Map<string, string>()
    // Generated ids avoid every explicit id of the level and the reserved names.
    const used = new Set<string>(RESERVED_STEP_IDS)
    for (const d of defs) if (d.id) used.add(d.id)
    // Per base name, the next suffix to try: every smaller one is taken, so 25,000 unnamed steps of
    // one action cost 25,000 tries, not 25,000²/2.
    const nextSuffix = new Map<string, number>()
    const levelNodes: GraphNode[] = []
    defs.forEach((def, index) => {
      const path = `${pathPrefix}steps[${index}]`
      let local = def.id
      if (!local) {
        const base = def.action ?? `step_${index + 1}`
        local = base
        if (used.has(local)) {
          let n = nextSuffix.get(base) ?? 2
          while (used.has(`${base}_${n}`)) n++
          local = `${base}_${n}`
          nextSuffix.set(base, n + 1)
        }
        used.add(local)
      } else if (RESERVED_STEP_IDS.has(local)) {
        issues.push({ path: `${path}.id`, message: reservedStepIdMessage(local) })
        local = `${local}#${index + 1}`
      } else if (siblings.has(local)) {
        issues.push({ path: `${path}.id`, message: `duplicate step id "${local}"` })
        // Still check the rest of this step, under a name no `dependsOn` can match (the definition is rejected anyway).
        local = `${local}#${index + 1}`
      }
      const id = parent ? `${parent.id}.${local}` : local
      const node: GraphNode = {
        id,
        path,
        kind: def.steps ? 'group' : def.forEach !== undefined ? 'forEach' : def.template !== undefined || def.workflow !== undefined ? 'subworkflow' : 'action',
        parent: parent?.id ?? null,
        def,
        factory: def.factory ?? null,
        action: def.action ?? null,
        deps: [],
        dependents: [],
        children: [],
        previous: null,
        order: ordered.length,
      }
      siblings.set(local, id)
      nodes.set(id, node)
      ordered.push(node)
      parent?.children.push(id)
      if (def.dependsOn) pendingDeps.push({ node, names: def.dependsOn, siblings })
      else if (!parallel && levelNodes.length > 0) {
        const prev = levelNodes[levelNodes.length - 1]!
        node.deps.push(prev.id)
        node.previous = prev.id
      }
      levelNodes.push(node)
      if (def.steps) addLevel(def.steps, node, def.parallel ?? false, `${path}.`)
    })
  }
  addLevel(definition.steps, null, definition.parallel ?? false, '')

  // Sibling ids first (the likelier meaning), then full paths; lazily, so a capped suggestion reads only what it compares.
  function* candidates(siblings: Map<string, string>): Iterable<string> {
    for (const k of siblings.keys()) if (!k.includes('#')) yield k
    for (const k of nodes.keys()) if (!k.includes('#')) yield k
  }
  for (const { node, names, siblings } of pendingDeps) {
    // A Set beside node.deps: a step naming 100,000 dependencies must not compare each with all the others.
    const deps = new Set(node.deps)
    names.forEach((name, i) => {
      const target = siblings.get(name) ?? (nodes.has(name) ? name : undefined)
      const at = `${node.path}.dependsOn[${i}]`
      if (!target) {
        issues.push({ path: at, message: `unknown step "${name}"${suggest(name, candidates(siblings))}` })
      } else if (target === node.id) {
        issues.push({ path: at, message: `step "${node.id}" depends on itself (cycle ${node.id} → ${node.id})` })
      } else if (target.startsWith(`${node.id}.`) || node.id.startsWith(`${target}.`)) {
        issues.push({ path: at, message: `step "${node.id}" cannot depend on its own group or member "${target}"` })
      } else if (!deps.has(target)) {
        deps.add(target)
        node.deps.push(target)
      }
    })
    if (node.deps.length === 1) node.previous = node.deps[0]!
  }

  for (const node of ordered) for (const dep of node.deps) nodes.get(dep)?.dependents.push(node.id)
  const cycle = findCycle(nodes)
  if (cycle) {
    const at = nodes.get(cycle[0]!)!
    issues.push({ path: `${at.path}.dependsOn`, message: `dependency cycle: ${cycle.join(' → ')}` })
  }

  // A top-level node is a leaf when no node outside its own subtree depends on it.
  const topLevel = new Map<string, string>()
  for (const n of ordered) topLevel.set(n.id, n.parent ? topLevel.get(n.parent)! : n.id)
  const dependedOn = new Set<string>()
  for (const n of ordered) for (const d of n.deps) if (topLevel.get(d) !== topLevel.get(n.id)) dependedOn.add(topLevel.get(d)!)
  const leaves = ordered.filter((n) => n.parent === null && !dependedOn.has(n.id)).map((n) => n.id)
  return { graph: { nodes, leaves, ordered }, issues }
}

/** A group settles after its children, so "group waits for child" counts as an edge too.
 * Iterative depth-first search: a 100,000-step chain must not overflow the stack. Edges are a
 * node's deps, then its children, walked by index (no array of them per node, no closure per start). */
function findCycle(nodes: Map<string, GraphNode>): string[] | null {
  const state = new Map<string, 1 | 2>() // 1 = on the path, 2 = done
  const path: string[] = []
  const frames: { node: GraphNode; next: number }[] = []
  for (const [start, startNode] of nodes) {
    if (state.has(start)) continue
    state.set(start, 1)
    path.push(start)
    frames.push({ node: startNode, next: 0 })
    while (frames.length > 0) {
      const frame = frames[frames.length - 1]!
      const { deps, children } = frame.node
      if (frame.next < deps.length + children.length) {
        const i = frame.next++
        const next = i < deps.length ? deps[i]! : children[i - deps.length]!
        const s = state.get(next)
        if (s === 1) return [...path.slice(path.indexOf(next)), next]
        if (s === undefined) {
          state.set(next, 1)
          path.push(next)
          frames.push({ node: nodes.get(next)!, next: 0 })
        }
      } else {
        frames.pop()
        path.pop()
        state.set(frame.node.id, 2)
      }
    }
  }
  return null
}
