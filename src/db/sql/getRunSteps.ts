import { asc, eq, sql } from 'drizzle-orm'
import type { Connection } from '../connection.ts'
import { steps, stepAttempts, type StepRow } from '../schema.ts'

/** A run's steps in the order they were created (declaration order). */
const byRun = new WeakMap<Connection, { all(values: { runId: string }): StepRow[] }>()

export function getRunSteps(conn: Connection, runId: string): StepRow[] {
  let query = byRun.get(conn)
  if (!query) {
    // Prepared once per connection: read on every run's result.
    query = conn.db.select().from(steps).where(eq(steps.runId, sql.placeholder('runId'))).orderBy(asc(steps.id)).prepare()
    byRun.set(conn, query)
  }
  return query.all({ runId })
}

export function getStepAttempts(conn: Connection, runId: string) {
  return conn.db.select().from(stepAttempts).where(eq(stepAttempts.runId, runId)).orderBy(asc(stepAttempts.id)).all()
}
