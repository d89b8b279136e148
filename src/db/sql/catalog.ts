// Read queries for the API: keyset-paginated lists and batched lookups (one statement per batch,
// so a page of runs with their workflows and steps costs a constant number of statements).
import { and, asc, desc, eq, inArray, lt, gt, sql, type SQL } from 'drizzle-orm'
import type { Connection } from '../connection.ts'
import { artifacts, runs, steps, templates, workflows, workflowVersions, stepAttempts } from '../schema.ts'

export interface Page {
  limit: number
  /** Exclusive keyset cursor (an id). */
  before?: string
}

export function listRuns(conn: Connection, q: Page & { status?: string; workflowId?: string; createdAfter?: number; createdBefore?: number }) {
  const where: SQL[] = []
  if (q.status) where.push(eq(runs.status, q.status))
  if (q.workflowId) where.push(eq(runs.workflowId, q.workflowId))
  if (q.createdAfter !== undefined) where.push(gt(runs.createdAt, q.createdAfter))
  if (q.createdBefore !== undefined) where.push(lt(runs.createdAt, q.createdBefore))
  if (q.before) where.push(lt(runs.id, q.before))
  return conn.db.select().from(runs).where(and(...where)).orderBy(desc(runs.id)).limit(q.limit).all()
}

export function listWorkflows(conn: Connection, q: Page & { name?: string }) {
  const where: SQL[] = []
  if (q.name) where.push(eq(workflows.name, q.name))
  if (q.before) where.push(lt(workflows.id, q.before))
  return conn.db.select().from(workflows).where(and(...where)).orderBy(desc(workflows.id)).limit(q.limit).all()
}

/** The latest version of each template, by name. */
export function listTemplates(conn: Connection, q: { limit: number; afterName?: string }) {
  const latest = sql`${templates.version} = (select max(t2.version) from templates t2 where t2.name = ${templates.name})`
  return conn.db
    .select()
    .from(templates)
    .where(and(latest, q.afterName ? gt(templates.name, q.afterName) : undefined))
    .orderBy(asc(templates.name))
    .limit(q.limit)
    .all()
}

export function listTemplateVersions(conn: Connection, name: string) {
  return conn.db.select().from(templates).where(eq(templates.name, name)).orderBy(desc(templates.version)).all()
}

export function getRunsByIds(conn: Connection, ids: readonly string[]) {
  if (ids.length === 0) return []
  return conn.db.select().from(runs).where(inArray(runs.id, [...ids])).all()
}

export function getWorkflowsByIds(conn: Connection, ids: readonly string[]) {
  if (ids.length === 0) return []
  return conn.db.select().from(workflows).where(inArray(workflows.id, [...ids])).all()
}

export function getWorkflowVersions(conn: Connection, keys: readonly { workflowId: string; version: number }[]) {
  if (keys.length === 0) return []
  const ids = [...new Set(keys.map((k) => k.workflowId))]
  return conn.db.select().from(workflowVersions).where(inArray(workflowVersions.workflowId, ids)).all()
    .filter((row) => keys.some((k) => k.workflowId === row.workflowId && k.version === row.version))
}

export function listWorkflowVersions(conn: Connection, workflowId: string) {
  return conn.db.select().from(workflowVersions).where(eq(workflowVersions.workflowId, workflowId)).orderBy(desc(workflowVersions.version)).all()
}

export function getStepsByRunIds(conn: Connection, runIds: readonly string[]) {
  if (runIds.length === 0) return []
  return conn.db.select().from(steps).where(inArray(steps.runId, [...runIds])).orderBy(asc(steps.id)).all()
}

export function getStepsByIds(conn: Connection, ids: readonly number[]) {
  if (ids.length === 0) return []
  return conn.db.select().from(steps).where(inArray(steps.id, [...ids])).all()
}

export function getAttemptsByRunIds(conn: Connection, runIds: readonly string[]) {
  if (runIds.length === 0) return []
  return conn.db.select().from(stepAttempts).where(inArray(stepAttempts.runId, [...runIds])).orderBy(asc(stepAttempts.id)).all()
}

/** The newest run of each workflow (run ids sort by creation time). */
export function getLatestRunsByWorkflowIds(conn: Connection, workflowIds: readonly string[]) {
  if (workflowIds.length === 0) return []
  const newest = sql`${runs.id} = (select max(r2.id) from runs r2 where r2.workflow_id = ${runs.workflowId})`
  return conn.db.select().from(runs).where(and(inArray(runs.workflowId, [...workflowIds]), newest)).all()
}

export function countRunsByStatus(conn: Connection) {
  return conn.db.select({ status: runs.status, count: sql<number>`count(*)` }).from(runs).groupBy(runs.status).all()
}

export function getArtifactsByRunIds(conn: Connection, runIds: readonly string[]) {
  if (runIds.length === 0) return []
  return conn.db.select().from(artifacts).where(inArray(artifacts.runId, [...runIds])).orderBy(asc(artifacts.createdAt), sql`rowid`).all() // rowid: the order they were stored in (created_at ties within a millisecond)
}

export function getArtifact(conn: Connection, id: string) {
  return conn.db.select().from(artifacts).where(eq(artifacts.id, id)).get()
}

export function getRetriesOf(conn: Connection, runId: string) {
  return conn.db.select().from(runs).where(eq(runs.retryOf, runId)).orderBy(asc(runs.id)).all()
}

export function getChildRunsOf(conn: Connection, runId: string) {
  return conn.db.select().from(runs).where(and(eq(runs.parentRunId, runId), sql`${runs.retryOf} is null`)).orderBy(asc(runs.id)).all()
}
