import type { Connection } from '../connection.ts'
import { events, type EventRow } from '../schema.ts'
import { rowReader } from '../rows.ts'

export interface EventQuery {
  afterSeq: number
  limit: number
  runId?: string
  workflowId?: string
  types?: readonly string[]
}

// Positional rows mapped by one literal per row (no ORM mapping, no spread per row).
const eventRows = rowReader(events)

/** One page of the log after a cursor, oldest first; served by events_run_seq / events_workflow_seq. */
export function listEvents(conn: Connection, q: EventQuery): EventRow[] {
  let where = 'seq > ?'
  const args: unknown[] = [q.afterSeq]
  if (q.runId !== undefined) {
    where += ' AND run_id = ?'
    args.push(q.runId)
  }
  if (q.workflowId !== undefined) {
    where += ' AND workflow_id = ?'
    args.push(q.workflowId)
  }
  if (q.types && q.types.length > 0) {
    where += ` AND type IN (${q.types.map(() => '?').join(', ')})`
    args.push(...q.types)
  }
  args.push(q.limit)
  return eventRows.all(conn, `WHERE ${where} ORDER BY seq LIMIT ?`, ...args)
}

export function lastEventSeq(conn: Connection): number {
  const row = conn.statement('SELECT max(seq) AS seq FROM events').get() as { seq: number | null }
  return row.seq ?? 0
}
