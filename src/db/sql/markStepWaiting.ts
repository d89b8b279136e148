import type { Connection } from '../connection.ts'

/** WAITING for a signal or a timer; the wait itself is kept in `output` until the step settles. */
export function markStepWaiting(conn: Connection, runId: string, stepId: string, wait: unknown, wakeAt: number | null): void {
  conn
    .statement("UPDATE steps SET status = 'WAITING', output = ?, wake_at = ? WHERE run_id = ? AND step_id = ?")
    .run(JSON.stringify(wait), wakeAt, runId, stepId)
}
