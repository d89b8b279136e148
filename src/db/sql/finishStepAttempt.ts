import type { Connection } from '../connection.ts'

export function finishStepAttempt(
  conn: Connection,
  a: { runId: string; stepId: string; attempt: number; status: string; error: string | null; at: number },
): void {
  conn
    .statement('UPDATE step_attempts SET status = ?, error = ?, finished_at = ? WHERE run_id = ? AND step_id = ? AND attempt = ?')
    .run(a.status, a.error, a.at, a.runId, a.stepId, a.attempt)
}

/**
 * An attempt that starts and ends in the same commit: its row is written once, finished. An upsert,
 * because a commit redone entry by entry (see Journal.supersede) has inserted the RUNNING row first.
 */
export function insertFinishedStepAttempt(
  conn: Connection,
  a: { runId: string; stepId: string; attempt: number; status: string; error: string | null; startedAt: number; at: number },
): void {
  conn
    .statement(
      `INSERT INTO step_attempts (run_id, step_id, attempt, status, error, started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (run_id, step_id, attempt) DO UPDATE SET status = excluded.status, error = excluded.error, finished_at = excluded.finished_at`,
    )
    .run(a.runId, a.stepId, a.attempt, a.status, a.error, a.startedAt, a.at)
}
