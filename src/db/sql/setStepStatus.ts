import type { Connection } from '../connection.ts'

/**
 * A status change that keeps the step's output (compensation: SUCCEEDED → COMPENSATING →
 * COMPENSATED or COMPENSATION_FAILED, and from there COMPENSATING again); the error is replaced.
 */
export function setStepStatus(conn: Connection, runId: string, stepId: string, status: string, error: string | null): void {
  conn.statement('UPDATE steps SET status = ?, error = ? WHERE run_id = ? AND step_id = ?').run(status, error, runId, stepId)
}
