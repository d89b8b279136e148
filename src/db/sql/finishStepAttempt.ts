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

export interface FinishedStepAttempt {
  runId: string
  stepId: string
  attempt: number
  status: string
  error: string | null
  startedAt: number
  at: number
}

/** Rows per multi-row upsert (7 parameters a row). */
const ATTEMPT_CHUNK = 50

/**
 * `insertFinishedStepAttempt` for the attempts of one commit (Journal.recordRow), several rows per
 * statement: ~0.75 µs less per attempt than a statement each.
 */
export function insertFinishedStepAttempts(conn: Connection, rows: FinishedStepAttempt[]): void {
  for (let i = 0; i < rows.length; i += ATTEMPT_CHUNK) {
    const n = Math.min(ATTEMPT_CHUNK, rows.length - i)
    if (n === 1) {
      insertFinishedStepAttempt(conn, rows[i]!)
      continue
    }
    const args: unknown[] = new Array(n * 7)
    for (let k = 0, p = 0; k < n; k++) {
      const a = rows[i + k]!
      args[p++] = a.runId
      args[p++] = a.stepId
      args[p++] = a.attempt
      args[p++] = a.status
      args[p++] = a.error
      args[p++] = a.startedAt
      args[p++] = a.at
    }
    conn.statement(insertFinishedSql(n)).run(args)
  }
}

// The multi-row upsert's text for each chunk size, built once.
const insertFinishedSqlBySize: string[] = []

function insertFinishedSql(rows: number): string {
  let sql = insertFinishedSqlBySize[rows]
  if (sql === undefined) {
    sql = `INSERT INTO step_attempts (run_id, step_id, attempt, status, error, started_at, finished_at)
      VALUES ${Array.from({ length: rows }, () => '(?, ?, ?, ?, ?, ?, ?)').join(', ')}
      ON CONFLICT (run_id, step_id, attempt) DO UPDATE SET status = excluded.status, error = excluded.error, finished_at = excluded.finished_at`
    insertFinishedSqlBySize[rows] = sql
  }
  return sql
}
