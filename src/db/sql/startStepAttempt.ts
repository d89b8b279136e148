import type { Connection } from '../connection.ts'
import { multiRowInsert } from '../rows.ts'

export interface StepAttemptStart {
  runId: string
  stepId: string
  attempt: number
  params: unknown
  at: number
}

/** The step becomes RUNNING in a new attempt, recorded in step_attempts. */
export function startStepAttempt(conn: Connection, s: StepAttemptStart): void {
  markStepRunning(conn, s)
  insertStepAttempt(conn, s)
}

/** The step row's part of `startStepAttempt`. */
export function markStepRunning(conn: Connection, s: StepAttemptStart): void {
  conn
    .statement(
      `UPDATE steps SET status = 'RUNNING', attempts = ?, params = ?, started_at = coalesce(started_at, ?), wake_at = NULL
       WHERE run_id = ? AND step_id = ?`,
    )
    .run(s.attempt, JSON.stringify(s.params ?? null), s.at, s.runId, s.stepId)
}

/** The step_attempts part of `startStepAttempt`: the attempt's row, RUNNING. */
export function insertStepAttempt(conn: Connection, s: { runId: string; stepId: string; attempt: number; at: number }): void {
  conn
    .statement("INSERT INTO step_attempts (run_id, step_id, attempt, status, started_at) VALUES (?, ?, ?, 'RUNNING', ?)")
    .run(s.runId, s.stepId, s.attempt, s.at)
}

/** A group step has no attempts of its own: it is RUNNING while its members run. */
export function startGroupStep(conn: Connection, runId: string, stepId: string, at: number): void {
  conn
    .statement("UPDATE steps SET status = 'RUNNING', started_at = coalesce(started_at, ?) WHERE run_id = ? AND step_id = ?")
    .run(at, runId, stepId)
}

/** The rows of a commit's new attempts (Journal.recordRow), RUNNING, 50 to a statement. */
export function insertStepAttempts(conn: Connection, rows: StepAttemptStart[]): void {
  writeStarted(conn, rows, undefined)
}

const writeStarted = multiRowInsert<StepAttemptStart>(
  'INSERT INTO step_attempts (run_id, step_id, attempt, status, started_at)', 5,
  (r, args, a) => {
    args[a] = r.runId
    args[a + 1] = r.stepId
    args[a + 2] = r.attempt
    args[a + 3] = 'RUNNING'
    args[a + 4] = r.at
  },
)
