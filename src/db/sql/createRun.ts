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
  deadlineAt: number | null
  createdAt: number
}

export interface NewStep {
  stepId: string
  parentStepId: string | null
  kind: string
  factory: string | null
  action: string | null
}

const STEP_CHUNK = 100

/** Inserts the run and a PENDING row for every step of its graph. */
export function createRun(conn: Connection, run: NewRun, steps: NewStep[]): void {
  conn
    .statement(
      `INSERT INTO runs (id, workflow_id, workflow_version, status, input, idempotency_key, parent_run_id, parent_step_id,
        retry_of, deadline_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .run(
      run.id, run.workflowId, run.workflowVersion, run.status, JSON.stringify(run.input ?? null), run.idempotencyKey,
      run.parentRunId, run.parentStepId, run.retryOf, run.deadlineAt, run.createdAt,
    )
  const row = "(?, ?, ?, ?, ?, ?, 'PENDING')"
  for (let i = 0; i < steps.length; i += STEP_CHUNK) {
    const chunk = steps.slice(i, i + STEP_CHUNK)
    const sql = `INSERT INTO steps (run_id, step_id, parent_step_id, kind, factory, action, status) VALUES ${chunk.map(() => row).join(', ')}`
    conn.statement(sql).run(...chunk.flatMap((s) => [run.id, s.stepId, s.parentStepId, s.kind, s.factory, s.action]))
  }
}
