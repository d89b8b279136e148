import type { Connection } from '../connection.ts'

export function finishStepAttempt(
  conn: Connection,
  a: { runId: string; stepId: string; attempt: number; status: string; error: string | null; at: number },
): void {
  conn
    .statement('UPDATE step_attempts SET status = ?, error = ?, finished_at = ? WHERE run_id = ? AND step_id = ? AND attempt = ?')
    .run(a.status, a.error, a.at, a.runId, a.stepId, a.attempt)
}
