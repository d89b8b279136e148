import type { Connection } from '../connection.ts'

/** The step waits until `wakeAt` for its next attempt; recovery re-arms the timer from this column. */
export function scheduleStepRetry(conn: Connection, runId: string, stepId: string, wakeAt: number, error: string): void {
  conn
    .statement("UPDATE steps SET status = 'RETRY_SCHEDULED', wake_at = ?, error = ? WHERE run_id = ? AND step_id = ?")
    .run(wakeAt, error, runId, stepId)
}
