import { and, desc, eq, isNull, sql } from 'drizzle-orm'
import type { Connection } from '../connection.ts'
import { runs, type RunRow } from '../schema.ts'

// Read on every run's start, end and wait: prepared once per connection instead of building and
// compiling the SQL on each call.
const byId = new WeakMap<Connection, { get(values: { runId: string }): RunRow | undefined }>()

export function getRun(conn: Connection, runId: string): RunRow | undefined {
  let query = byId.get(conn)
  if (!query) {
    query = conn.db.select().from(runs).where(eq(runs.id, sql.placeholder('runId'))).prepare()
    byId.set(conn, query)
  }
  return query.get({ runId })
}

export function findRunByIdempotencyKey(conn: Connection, workflowId: string, key: string): RunRow | undefined {
  return conn.db.select().from(runs).where(and(eq(runs.workflowId, workflowId), eq(runs.idempotencyKey, key))).get()
}

export function getLatestRun(conn: Connection, workflowId: string): RunRow | undefined {
  return conn.db
    .select()
    .from(runs)
    .where(eq(runs.workflowId, workflowId))
    .orderBy(desc(runs.id))
    .limit(1)
    .get()
}

/** The child run a sub-workflow step started (not a retry of it). */
export function findChildRun(conn: Connection, parentRunId: string, parentStepId: string): RunRow | undefined {
  return conn.db
    .select()
    .from(runs)
    .where(and(eq(runs.parentRunId, parentRunId), eq(runs.parentStepId, parentStepId), isNull(runs.retryOf)))
    .orderBy(desc(runs.id))
    .limit(1)
    .get()
}
