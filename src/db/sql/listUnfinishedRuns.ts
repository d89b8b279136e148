import { inArray } from 'drizzle-orm'
import type { Connection } from '../connection.ts'
import { runs, type RunRow } from '../schema.ts'

/** Runs that a previous process left in flight; recovery resumes them. */
export function listUnfinishedRuns(conn: Connection): RunRow[] {
  return conn.db.select().from(runs).where(inArray(runs.status, ['PENDING', 'RUNNING', 'PAUSED', 'ROLLING_BACK'])).all()
}
