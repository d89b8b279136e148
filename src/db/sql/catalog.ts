// Read queries for the API: keyset-paginated lists and batched lookups (one statement per batch,
// so a page of runs with their workflows and steps costs a constant number of statements).
import { and, asc, desc, eq, inArray, lt, gt, sql, type SQL } from 'drizzle-orm'
import type { Connection } from '../connection.ts'
import { inJson, rowReader } from '../rows.ts'
import { artifacts, runs, steps, templates, workflows, workflowVersions, stepAttempts } from '../schema.ts'

// The reads every page and batch makes, without the query builder (rows.ts); the rest use drizzle.
const runRows = rowReader(runs)
const workflowRows = rowReader(workflows)
const stepRows = rowReader(steps)
const attemptRows = rowReader(stepAttempts)
const artifactRows = rowReader(artifacts)

export interface Page {
  limit: number
  /** Exclusive keyset cursor (an id). */
  before?: string
}

export function listRuns(conn: Connection, q: Page & { status?: string; workflowId?: string; createdAfter?: number; createdBefore?: number }) {
  const where: string[] = []
  const params: unknown[] = []
  const add = (clause: string, value: unknown) => (where.push(clause), params.push(value))
  if (q.status) add('status = ?', q.status)
  if (q.workflowId) add('workflow_id = ?', q.workflowId)
  if (q.createdAfter !== undefined) add('created_at > ?', q.createdAfter)
  if (q.createdBefore !== undefined) add('created_at < ?', q.createdBefore)
  if (q.before) add('id < ?', q.before)
  return runRows.all(conn, `${where.length ? `WHERE ${where.join(' AND ')} ` : ''}ORDER BY id DESC LIMIT ?`, ...params, q.limit)
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
  return runRows.all(conn, `WHERE ${inJson('id')}`, JSON.stringify(ids))
}

export function getWorkflowsByIds(conn: Connection, ids: readonly string[]) {
  if (ids.length === 0) return []
  return workflowRows.all(conn, `WHERE ${inJson('id')}`, JSON.stringify(ids))
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

/**
 * At most `first` steps of each run, in declaration order, after the step `afterId` (a row id).
 * One statement for any number of runs; each run's part is a range of the (run_id, id) index that
 * stops at `first`, so a run with 100,000 steps costs no more than a small one.
 */
export function getStepsByRunIds(conn: Connection, runIds: readonly string[], page: { first: number; afterId?: number }) {
  if (runIds.length === 0) return []
  return stepRows.all(
    conn,
    `WHERE id IN (SELECT s.id FROM json_each(?) k JOIN steps s ON s.id IN (
       SELECT p.id FROM steps p WHERE p.run_id = k.value AND p.id > ? ORDER BY p.id LIMIT ?)) ORDER BY id`,
    JSON.stringify(runIds), page.afterId ?? 0, page.first,
  )
}

export function getStepsByIds(conn: Connection, ids: readonly number[]) {
  if (ids.length === 0) return []
  return stepRows.all(conn, `WHERE ${inJson('id')}`, JSON.stringify(ids))
}

/** The latest `last` attempts of each step (run id, step id), oldest first; one statement, bounded per step. */
export function getAttemptsBySteps(conn: Connection, keys: readonly { runId: string; stepId: string }[], last: number) {
  if (keys.length === 0) return []
  return attemptRows.all(
    conn,
    `WHERE id IN (SELECT a.id FROM json_each(?) k JOIN step_attempts a ON a.id IN (
       SELECT p.id FROM step_attempts p WHERE p.run_id = json_extract(k.value, '$[0]') AND p.step_id = json_extract(k.value, '$[1]')
       ORDER BY p.attempt DESC LIMIT ?)) ORDER BY id`,
    JSON.stringify(keys.map((k) => [k.runId, k.stepId])), last,
  )
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
  // rowid: the order they were stored in (created_at ties within a millisecond).
  return artifactRows.all(conn, `WHERE ${inJson('run_id')} ORDER BY created_at, rowid`, JSON.stringify(runIds))
}

export function getArtifact(conn: Connection, id: string) {
  return artifactRows.get(conn, 'WHERE id = ?', id)
}

export function getRetriesOf(conn: Connection, runId: string) {
  return runRows.all(conn, 'WHERE retry_of = ? ORDER BY id', runId)
}

export function getChildRunsOf(conn: Connection, runId: string) {
  return runRows.all(conn, 'WHERE parent_run_id = ? AND retry_of IS NULL ORDER BY id', runId)
}
