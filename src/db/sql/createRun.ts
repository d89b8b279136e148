import type { Connection } from '../connection.ts'

export interface NewRun {
  id: string
  workflowId: string
  workflowVersion: number
  status: string
  input: unknown
  idempotencyKey: string | null
  parentRunId: string | null
  parentStepId: string | null
  retryOf: string | null
  params?: unknown
  stepParams?: unknown
  deadlineAt: number | null
  createdAt: number
  /** Set when the run starts in the same commit: the row is inserted started (no UPDATE after). */
  startedAt?: number | null
}

export interface NewStep {
  stepId: string
  parentStepId: string | null
  kind: string
  factory: string | null
  action: string | null
  /** A rerun starts the steps it reuses as SUCCEEDED with their earlier output. */
  status?: string
  output?: unknown
  params?: unknown
  attempts?: number
  completedOrder?: number | null
}

const STEP_CHUNK = 100

/**
 * Inserts the run and a row for every step of its graph (PENDING unless given). Returns the first
 * step row's id (see `insertSteps`).
 */
export function createRun(conn: Connection, run: NewRun, steps: NewStep[]): number {
  conn
    .statement(
      `INSERT INTO runs (id, workflow_id, workflow_version, status, input, idempotency_key, parent_run_id, parent_step_id,
        retry_of, params, step_params, deadline_at, created_at, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .run(
      run.id, run.workflowId, run.workflowVersion, run.status, JSON.stringify(run.input ?? null), run.idempotencyKey,
      run.parentRunId, run.parentStepId, run.retryOf, json(run.params), json(run.stepParams), run.deadlineAt, run.createdAt,
      run.startedAt ?? null,
    )
  return insertSteps(conn, run.id, steps)
}

/**
 * Step rows in chunks (a forEach adds its items' rows while the run goes on). Returns the id of the
 * first: inside the caller's write transaction the rows get consecutive ids in the order given
 * (AUTOINCREMENT: one more than the largest so far). Callers use them only as a hint (settleStep).
 */
export function insertSteps(conn: Connection, runId: string, steps: NewStep[]): number {
  let first = 0
  for (let i = 0; i < steps.length; i += STEP_CHUNK) {
    const n = Math.min(STEP_CHUNK, steps.length - i)
    const args: unknown[] = new Array(n * 11)
    for (let k = 0, a = 0; k < n; k++) {
      const s = steps[i + k]!
      args[a++] = runId
      args[a++] = s.stepId
      args[a++] = s.parentStepId
      args[a++] = s.kind
      args[a++] = s.factory
      args[a++] = s.action
      args[a++] = s.status ?? 'PENDING'
      args[a++] = json(s.output)
      args[a++] = json(s.params)
      args[a++] = s.attempts ?? 0
      args[a++] = s.completedOrder ?? null
    }
    const r = conn.statement(insertStepsSql(n)).run(args)
    if (i === 0) first = Number(r.lastInsertRowid) - n + 1
  }
  return first
}

// The multi-row INSERT's text for each chunk size, built once.
const insertStepsSqlBySize: string[] = []

function insertStepsSql(rows: number): string {
  let sql = insertStepsSqlBySize[rows]
  if (sql === undefined) {
    sql = `INSERT INTO steps (run_id, step_id, parent_step_id, kind, factory, action, status, output, params, attempts, completed_order)
      VALUES ${Array.from({ length: rows }, () => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`
    insertStepsSqlBySize[rows] = sql
  }
  return sql
}

function json(value: unknown): string | null {
  return value === undefined ? null : JSON.stringify(value)
}
