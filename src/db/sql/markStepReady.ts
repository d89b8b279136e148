import type { Connection } from '../connection.ts'

/** READY: dependencies settled, params resolved (kept so a restart can dispatch it as is). */
export function markStepReady(conn: Connection, runId: string, stepId: string, params: unknown): void {
  conn
    .statement("UPDATE steps SET status = 'READY', params = ?, wake_at = NULL WHERE run_id = ? AND step_id = ?")
    .run(JSON.stringify(params ?? null), runId, stepId)
}
