import { and, desc, eq } from 'drizzle-orm'
import type { Connection } from '../connection.ts'
import { runs, type RunRow } from '../schema.ts'

export function getRun(conn: Connection, runId: string): RunRow | undefined {
  return conn.db.select().from(runs).where(eq(runs.id, runId)).get()
}

export function findRunByIdempotencyKey(conn: Connection, workflowId: string, key: string): RunRow | undefined {
  return conn.db.select().from(runs).where(and(eq(runs.workflowId, workflowId), eq(runs.idempotencyKey, key))).get()
}

export function getLatestRun(conn: Connection, workflowId: string): RunRow | undefined {
  return conn.db
    .select()
    .from(runs)
    .where(eq(runs.workflowId, workflowId))
    .orderBy(desc(runs.createdAt), desc(runs.id))
    .limit(1)
    .get()
}
