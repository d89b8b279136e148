// Refs for the node types, declared before their fields so the domain files can point at each
// other without import cycles. Each loads by id through a per-request DataLoader.
import { builder } from './builder.ts'
import { inKeyOrder } from './pagination.ts'
import type { RunRecord, StepRecord, WorkflowRecord } from '../engine/catalog.ts'

export const WorkflowRef = builder.loadableNodeRef('Workflow', {
  id: { resolve: (w: WorkflowRecord) => w.id },
  load: async (ids: string[], ctx) => inKeyOrder(ids, ctx.orchestrator.catalog.workflowsByIds(ids), (w) => w.id),
})

export const RunRef = builder.loadableNodeRef('Run', {
  id: { resolve: (r: RunRecord) => r.id },
  load: async (ids: string[], ctx) => inKeyOrder(ids, ctx.orchestrator.catalog.runsByIds(ids), (r) => r.id),
})

export const StepRef = builder.loadableNodeRef('Step', {
  id: { resolve: (s: StepRecord) => s.id, parse: (id: string) => Number(id) },
  load: async (ids: number[], ctx) => inKeyOrder(ids, ctx.orchestrator.catalog.stepsByIds(ids), (s) => s.id),
})

// A named connection shared by every field that pages through runs.
export const RunConnection = builder.connectionObject({ type: RunRef, name: 'RunConnection' })
