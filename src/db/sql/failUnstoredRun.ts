import type { Connection } from '../connection.ts'

/**
 * A run one of whose changes the database refused for good: it ends FAILED with `error`, and so do
 * its unsettled steps and running attempts, so no row claims a transition that was never stored.
 * Returns the steps it failed.
 */
export function failUnstoredRun(conn: Connection, runId: string, error: string, at: number): string[] {
  const steps = conn
    .statement(
      `UPDATE steps SET status = 'FAILED', error = ?, finished_at = ?, wake_at = NULL
       WHERE run_id = ? AND status IN ('PENDING', 'READY', 'RUNNING', 'WAITING', 'RETRY_SCHEDULED')
       RETURNING step_id`,
    )
    .pluck()
    .all(error, at, runId) as string[]
  conn
    .statement("UPDATE step_attempts SET status = 'FAILED', error = ?, finished_at = ? WHERE run_id = ? AND status IN ('RUNNING', 'WAITING')")
    .run(error, at, runId)
  conn.statement("UPDATE runs SET status = 'FAILED', error = ?, finished_at = ? WHERE id = ?").run(error, at, runId)
  return steps
}
