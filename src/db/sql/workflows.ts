import { and, desc, eq, sql } from 'drizzle-orm'
import type { Connection } from '../connection.ts'
import { templates, workflows, workflowVersions } from '../schema.ts'
import { rowReader } from '../rows.ts'

export interface NewWorkflow {
  id: string
  name: string
  definition: unknown
  templateName?: string | null
  templateVersion?: number | null
  params?: unknown
  at: number
}

/** A new workflow and its version 1, in one transaction. */
export function insertWorkflow(conn: Connection, w: NewWorkflow): void {
  conn.transaction(() => {
    conn.db
      .insert(workflows)
      .values({
        id: w.id, name: w.name, currentVersion: 1, templateName: w.templateName ?? null,
        templateVersion: w.templateVersion ?? null, params: w.params ?? null, createdAt: w.at, updatedAt: w.at,
      })
      .run()
    conn.db.insert(workflowVersions).values({ workflowId: w.id, version: 1, definition: w.definition, createdAt: w.at }).run()
  })
}

function prepareGetWorkflow(conn: Connection) {
  return conn.db.select().from(workflows).where(eq(workflows.id, sql.placeholder('id'))).prepare()
}
const workflowById = new WeakMap<Connection, ReturnType<typeof prepareGetWorkflow>>()

/** Read on every run's start: prepared once per connection. */
export function getWorkflow(conn: Connection, id: string) {
  let query = workflowById.get(conn)
  if (!query) {
    query = prepareGetWorkflow(conn)
    workflowById.set(conn, query)
  }
  return query.get({ id })
}

/** What starting a run needs of its workflow (name, current version, bound params): a raw prepared read, no ORM mapping. */
export function getWorkflowHead(conn: Connection, id: string): { name: string; currentVersion: number; params: unknown } | undefined {
  const r = conn.statement('SELECT name, current_version, params FROM workflows WHERE id = ?').raw(true).get(id) as
    | [string, number, string | null]
    | undefined
  return r ? { name: r[0], currentVersion: r[1], params: r[2] === null ? null : JSON.parse(r[2]) } : undefined
}

const versionRows = rowReader(workflowVersions)

/** Read when a run needs a version not compiled yet: a raw prepared statement, not a query built and compiled per call. */
export function getWorkflowVersion(conn: Connection, id: string, version: number) {
  return versionRows.get(conn, 'WHERE workflow_id = ? AND version = ?', id, version)
}

export function getLatestTemplate(conn: Connection, name: string) {
  return conn.db.select().from(templates).where(eq(templates.name, name)).orderBy(desc(templates.version)).limit(1).get()
}

export function getTemplateVersion(conn: Connection, name: string, version: number) {
  return conn.db.select().from(templates).where(and(eq(templates.name, name), eq(templates.version, version))).get()
}

export function insertTemplate(conn: Connection, t: { name: string; version: number; definition: unknown; at: number }): void {
  conn.db.insert(templates).values({ name: t.name, version: t.version, definition: t.definition, createdAt: t.at }).run()
}
