import type { Connection } from '../connection.ts'

export interface StepSettlement {
  runId: string
  stepId: string
  status: string
  output?: unknown
  /** `output`'s JSON text when the caller has it already. */
  outputText?: string
  error?: string | null
  at: number
  /** Position among the run's succeeded steps; rollback compensates in reverse of it. */
  completedOrder?: number | null
  /** The step row's id, if known: the row is found by it (~0.7 µs less than through steps_run_step). */
  rowId?: number
}

/** A step reaches a final status: SUCCEEDED, FAILED, SKIPPED or CANCELLED. */
export function settleStep(conn: Connection, s: StepSettlement): void {
  // By id, checked against run and step: a wrong hint updates nothing, and the row is found by key.
  if (s.rowId !== undefined) {
    const r = conn
      .statement(
        `UPDATE steps SET status = ?, output = ?, error = ?, finished_at = ?, completed_order = ?, wake_at = NULL
         WHERE id = ? AND run_id = ? AND step_id = ?`,
      )
      .run(s.status, outputText(s), s.error ?? null, s.at, s.completedOrder ?? null, s.rowId, s.runId, s.stepId)
    if (r.changes > 0) return
  }
  conn
    .statement(
      `UPDATE steps SET status = ?, output = ?, error = ?, finished_at = ?, completed_order = ?, wake_at = NULL
       WHERE run_id = ? AND step_id = ?`,
    )
    .run(s.status, outputText(s), s.error ?? null, s.at, s.completedOrder ?? null, s.runId, s.stepId)
}

function outputText(s: StepSettlement): string | null {
  return s.output === undefined ? null : s.outputText ?? JSON.stringify(s.output)
}
