import type { Connection } from '../connection.ts'

export interface StepSettlement {
  runId: string
  stepId: string
  status: string
  output?: unknown
  error?: string | null
  at: number
  /** Position among the run's succeeded steps; rollback compensates in reverse of it. */
  completedOrder?: number | null
}

/** A step reaches a final status: SUCCEEDED, FAILED, SKIPPED or CANCELLED. */
export function settleStep(conn: Connection, s: StepSettlement): void {
  conn
    .statement(
      `UPDATE steps SET status = ?, output = ?, error = ?, finished_at = ?, completed_order = ?, wake_at = NULL
       WHERE run_id = ? AND step_id = ?`,
    )
    .run(
      s.status, s.output === undefined ? null : JSON.stringify(s.output), s.error ?? null, s.at, s.completedOrder ?? null,
      s.runId, s.stepId,
    )
}
