import type { Connection } from '../connection.ts'

export interface NewEvent {
  type: string
  runId: string
  workflowId: string
  stepId: string | null
  attempt: number | null
  status: string | null
  at: number
  payload: unknown
}

/** Appends one event; returns its `seq`, the global cursor. */
export function insertEvent(conn: Connection, e: NewEvent): number {
  const r = conn
    .statement(
      'INSERT INTO events (run_id, workflow_id, step_id, attempt, type, status, at, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    )
    .run(e.runId, e.workflowId, e.stepId, e.attempt, e.type, e.status, e.at, e.payload === undefined ? null : JSON.stringify(e.payload))
  return Number(r.lastInsertRowid)
}
