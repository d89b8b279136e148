import type { Connection } from '../connection.ts'
import { multiRowInsert } from '../rows.ts'

export function finishStepAttempt(
  conn: Connection,
  a: { runId: string; stepId: string; attempt: number; status: string; error: string | null; at: number },
): void {
  conn
    .statement('UPDATE step_attempts SET status = ?, error = ?, finished_at = ? WHERE run_id = ? AND step_id = ? AND attempt = ?')
    .run(a.status, a.error, a.at, a.runId, a.stepId, a.attempt)
}

export interface FinishedStepAttempt {
  runId: string
  stepId: string
  attempt: number
  status: string
  error: string | null
  startedAt: number
  at: number
}

/**
 * The rows of attempts that started and ended in one commit (Journal.recordRow), each written once,
 * finished, 50 to a statement (~0.75 µs less per attempt than a statement each). An upsert, because
 * a commit redone entry by entry (see Journal.supersede) has inserted the RUNNING row first.
 */
export function insertFinishedStepAttempts(conn: Connection, rows: FinishedStepAttempt[]): void {
  writeFinished(conn, rows, undefined)
}

const writeFinished = multiRowInsert<FinishedStepAttempt>(
  'INSERT INTO step_attempts (run_id, step_id, attempt, status, error, started_at, finished_at)', 7,
  (r, args, a) => {
    args[a] = r.runId
    args[a + 1] = r.stepId
    args[a + 2] = r.attempt
    args[a + 3] = r.status
    args[a + 4] = r.error
    args[a + 5] = r.startedAt
    args[a + 6] = r.at
  },
  { tail: 'ON CONFLICT (run_id, step_id, attempt) DO UPDATE SET status = excluded.status, error = excluded.error, finished_at = excluded.finished_at' },
)
