// What a run is made of when it starts or resumes: its workflow version, graph, input and params.
import type { WorkflowDefinition } from './interfaces.ts'
import type { Graph } from './graph.ts'

export interface RunSpec {
  id: string
  workflowId: string
  workflowName: string
  workflowVersion: number
  definition: WorkflowDefinition
  graph: Graph
  input: unknown
  boundParams: Record<string, unknown> | undefined
  /** Edited params by step id (retryRun): they replace the definition's params for that step. */
  stepParams?: Record<string, Record<string, unknown>>
  deadlineAt: number | null
}
