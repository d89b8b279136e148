import type { Connection } from '../connection.ts'

/** A status change that keeps the step's output (compensation: SUCCEEDED → COMPENSATING → COMPENSATED). */
export function setStepStatus(conn: Connection, runId: string, stepId: string, status: string, error: string | null): void {
  conn.statement('UPDATE steps SET status = ?, error = coalesce(?, error) WHERE run_id = ? AND step_id = ?').run(status, error, runId, stepId)
}
