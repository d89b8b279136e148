import type { Connection } from '../connection.ts'

export interface RunStatusChange {
  runId: string
  status: string
  at: number
  /** Set on the first RUNNING. */
  started?: boolean
  /** Set on a terminal status. */
  finished?: boolean
  output?: unknown
  /** `output`'s JSON text when the caller has it already. */
  outputText?: string
  error?: string | null
}

export function setRunStatus(conn: Connection, c: RunStatusChange): void {
  conn
    .statement(
      `UPDATE runs SET status = ?,
        started_at = CASE WHEN ? THEN coalesce(started_at, ?) ELSE started_at END,
        finished_at = CASE WHEN ? THEN ? ELSE finished_at END,
        output = CASE WHEN ? THEN ? ELSE output END,
        error = CASE WHEN ? THEN ? ELSE error END
       WHERE id = ?`,
    )
    .run(
      c.status, c.started ? 1 : 0, c.at, c.finished ? 1 : 0, c.at,
      c.output !== undefined ? 1 : 0, c.output === undefined ? null : c.outputText ?? JSON.stringify(c.output),
      c.error !== undefined ? 1 : 0, c.error ?? null, c.runId,
    )
}
