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
    .run(e.runId, e.workflowId, e.stepId, e.attempt, e.type, e.status, e.at, payloadText(e.payload))
  return Number(r.lastInsertRowid)
}

/** Rows per multi-row INSERT (8 parameters a row: far below SQLite's limit). */
const EVENT_CHUNK = 50

/**
 * Appends `events` in order, several rows per INSERT; returns the `seq` of the first. A statement
 * per row cost ~1.2 µs more per event (its setup, the call, and AUTOINCREMENT's sqlite_sequence
 * update, once per statement). Inside the caller's write transaction nothing else inserts, and
 * AUTOINCREMENT gives each row one more than the largest seq so far, so the rows of one call get
 * consecutive seqs, in the order given.
 */
export function insertEvents(conn: Connection, events: readonly NewEvent[]): number {
  let first = 0
  for (let i = 0; i < events.length; i += EVENT_CHUNK) {
    const n = Math.min(EVENT_CHUNK, events.length - i)
    if (n === 1) {
      const seq = insertEvent(conn, events[i]!)
      if (i === 0) first = seq
      continue
    }
    const args: unknown[] = new Array(n * 8)
    for (let k = 0, a = 0; k < n; k++) {
      const e = events[i + k]!
      args[a++] = e.runId
      args[a++] = e.workflowId
      args[a++] = e.stepId
      args[a++] = e.attempt
      args[a++] = e.type
      args[a++] = e.status
      args[a++] = e.at
      args[a++] = payloadText(e.payload)
    }
    const r = conn.statement(insertEventsSql(n)).run(args)
    if (r.changes !== n) throw new Error(`inserted ${r.changes} of ${n} events`)
    if (i === 0) first = Number(r.lastInsertRowid) - n + 1
  }
  return first
}

// The multi-row INSERT's text for each chunk size, built once.
const insertEventsSqlBySize: string[] = []

function insertEventsSql(rows: number): string {
  let sql = insertEventsSqlBySize[rows]
  if (sql === undefined) {
    sql = `INSERT INTO events (run_id, workflow_id, step_id, attempt, type, status, at, payload)
      VALUES ${Array.from({ length: rows }, () => '(?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`
    insertEventsSqlBySize[rows] = sql
  }
  return sql
}

function payloadText(payload: unknown): string | null {
  return payload === undefined ? null : JSON.stringify(payload)
}
