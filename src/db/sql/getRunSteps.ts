import { asc, eq } from 'drizzle-orm'
import type { Connection } from '../connection.ts'
import { steps, stepAttempts, type StepRow } from '../schema.ts'

/** A run's steps in the order they were created (declaration order). */
export function getRunSteps(conn: Connection, runId: string): StepRow[] {
  return conn.db.select().from(steps).where(eq(steps.runId, runId)).orderBy(asc(steps.id)).all()
}

export function getStepAttempts(conn: Connection, runId: string) {
  return conn.db.select().from(stepAttempts).where(eq(stepAttempts.runId, runId)).orderBy(asc(stepAttempts.id)).all()
}
