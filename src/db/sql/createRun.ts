import type { Connection } from '../connection.ts'
import { multiRowInsert } from '../rows.ts'

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
 * Step rows, 100 to a statement (a forEach adds its items' rows while the run goes on). Returns the
 * id of the first; the rest follow it one by one (`multiRowInsert`). Callers use them only as a hint
 * (settleStep).
 */
export function insertSteps(conn: Connection, runId: string, steps: NewStep[]): number {
  return writeSteps(conn, steps, runId)
}

const writeSteps = multiRowInsert<NewStep, string>(
  'INSERT INTO steps (run_id, step_id, parent_step_id, kind, factory, action, status, output, params, attempts, completed_order)', 11,
  (s, args, a, runId) => {
    args[a] = runId
    args[a + 1] = s.stepId
    args[a + 2] = s.parentStepId
    args[a + 3] = s.kind
    args[a + 4] = s.factory
    args[a + 5] = s.action
    args[a + 6] = s.status ?? 'PENDING'
    args[a + 7] = json(s.output)
    args[a + 8] = json(s.params)
    args[a + 9] = s.attempts ?? 0
    args[a + 10] = s.completedOrder ?? null
  },
  { chunk: 100 },
)

function json(value: unknown): string | null {
  return value === undefined ? null : JSON.stringify(value)
}
