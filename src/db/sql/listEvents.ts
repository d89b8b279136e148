import type { Connection } from '../connection.ts'
import type { EventRow } from '../schema.ts'

export interface EventQuery {
  afterSeq: number
  limit: number
  runId?: string
  workflowId?: string
  types?: readonly string[]
}

interface RawEvent extends Omit<EventRow, 'payload'> {
  payload: string | null
}

/** One page of the log after a cursor, oldest first; served by events_run_seq / events_workflow_seq. */
export function listEvents(conn: Connection, q: EventQuery): EventRow[] {
  const where = ['seq > ?']
  const args: unknown[] = [q.afterSeq]
  if (q.runId !== undefined) {
    where.push('run_id = ?')
    args.push(q.runId)
  }
  if (q.workflowId !== undefined) {
    where.push('workflow_id = ?')
    args.push(q.workflowId)
  }
  if (q.types && q.types.length > 0) {
    where.push(`type IN (${q.types.map(() => '?').join(', ')})`)
    args.push(...q.types)
  }
  args.push(q.limit)
  const rows = conn
    .statement(
      `SELECT seq, run_id AS runId, workflow_id AS workflowId, step_id AS stepId, attempt, type, status, at, payload
       FROM events WHERE ${where.join(' AND ')} ORDER BY seq LIMIT ?`,
    )
    .all(...args) as RawEvent[]
  return rows.map((r) => ({ ...r, payload: r.payload === null ? null : JSON.parse(r.payload) }))
}

export function lastEventSeq(conn: Connection): number {
  const row = conn.statement('SELECT max(seq) AS seq FROM events').get() as { seq: number | null }
  return row.seq ?? 0
}
