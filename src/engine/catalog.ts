// Read access for the API and dashboards: paginated lists and batched lookups, on top of the
// read queries in db/sql/catalog.ts. DataLoaders in the GraphQL layer call the batched ones.
import type { Connection } from '../db/connection.ts'
import * as q from '../db/sql/catalog.ts'
import { listEvents } from '../db/sql/listEvents.ts'
import type { EventFilter, RunEvent } from './interfaces.ts'

export type RunRecord = ReturnType<typeof q.listRuns>[number]
export type WorkflowRecord = ReturnType<typeof q.listWorkflows>[number]
export type StepRecord = ReturnType<typeof q.getStepsByRunIds>[number]
export type AttemptRecord = ReturnType<typeof q.getAttemptsBySteps>[number]
export type TemplateRecord = ReturnType<typeof q.listTemplates>[number]
export type WorkflowVersionRecord = ReturnType<typeof q.listWorkflowVersions>[number]
export type ArtifactRecord = ReturnType<typeof q.getArtifactsByRunIds>[number]

export class Catalog {
  constructor(private readonly conn: Connection) {}

  runs(page: q.Page & { status?: string; workflowId?: string; createdAfter?: number; createdBefore?: number }): RunRecord[] {
    return q.listRuns(this.conn, page)
  }

  workflows(page: q.Page & { name?: string }): WorkflowRecord[] {
    return q.listWorkflows(this.conn, page)
  }

  templates(page: { limit: number; afterName?: string }): TemplateRecord[] {
    return q.listTemplates(this.conn, page)
  }

  templateVersions(name: string) {
    return q.listTemplateVersions(this.conn, name)
  }

  workflowVersions(workflowId: string): WorkflowVersionRecord[] {
    return q.listWorkflowVersions(this.conn, workflowId)
  }

  runsByIds(ids: readonly string[]): RunRecord[] {
    return q.getRunsByIds(this.conn, ids)
  }

  workflowsByIds(ids: readonly string[]): WorkflowRecord[] {
    return q.getWorkflowsByIds(this.conn, ids)
  }

  workflowVersionsByKeys(keys: readonly { workflowId: string; version: number }[]): WorkflowVersionRecord[] {
    return q.getWorkflowVersions(this.conn, keys)
  }

  /** At most `first` steps of each run (declaration order), after the step with row id `afterId`. */
  stepsByRunIds(runIds: readonly string[], page: { first: number; afterId?: number }): StepRecord[] {
    return q.getStepsByRunIds(this.conn, runIds, page)
  }

  stepsByIds(ids: readonly number[]): StepRecord[] {
    return q.getStepsByIds(this.conn, ids)
  }

  /** The latest `last` attempts of each step, oldest first. */
  attemptsBySteps(keys: readonly { runId: string; stepId: string }[], last: number): AttemptRecord[] {
    return q.getAttemptsBySteps(this.conn, keys, last)
  }

  latestRunsByWorkflowIds(workflowIds: readonly string[]): RunRecord[] {
    return q.getLatestRunsByWorkflowIds(this.conn, workflowIds)
  }

  artifactsByRunIds(runIds: readonly string[]): ArtifactRecord[] {
    return q.getArtifactsByRunIds(this.conn, runIds)
  }

  artifact(id: string): ArtifactRecord | undefined {
    return q.getArtifact(this.conn, id)
  }

  retriesOf(runId: string): RunRecord[] {
    return q.getRetriesOf(this.conn, runId)
  }

  childRunsOf(runId: string): RunRecord[] {
    return q.getChildRunsOf(this.conn, runId)
  }

  runCounts(): { status: string; count: number }[] {
    return q.countRunsByStatus(this.conn)
  }

  /** One page of the event log after a seq cursor, oldest first. */
  events(filter: EventFilter & { afterSeq: number; limit: number }): RunEvent[] {
    return listEvents(this.conn, filter) as RunEvent[]
  }

  /** How many statements the connection has run; tests use it to prove batching. */
  get statementCount(): number {
    return this.conn.statementCount
  }
}
