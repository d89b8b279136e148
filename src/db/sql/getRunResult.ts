import type { Connection } from '../connection.ts'

/** Whose child the run is, if anyone's: a retry's parent step does not wait for it. */
export interface RunLineage {
  parentRunId: string | null
  parentStepId: string | null
  retryOf: string | null
}

export interface RunResultRow extends RunLineage {
  workflowId: string
  status: string
  output: unknown
  error: string | null
}

export interface StepResultRow {
  stepId: string
  status: string
  output: unknown
  attempts: number
  error: string | null
}

// Read once for every finished run (its waiters' result, its parent step's output): two plain
// prepared statements with only the columns a result needs, in raw (array) mode, no ORM mapping.

/** The run's columns of a RunResult (and its parent, for a sub-workflow's child run). */
export function getRunResultRow(conn: Connection, runId: string): RunResultRow | undefined {
  const r = conn
    .statement('SELECT workflow_id, status, output, error, parent_run_id, parent_step_id, retry_of FROM runs WHERE id = ?')
    .raw(true)
    .get(runId) as [string, string, string | null, string | null, string | null, string | null, string | null] | undefined
  if (!r) return undefined
  return {
    workflowId: r[0], status: r[1], output: r[2] === null ? null : JSON.parse(r[2]), error: r[3],
    parentRunId: r[4], parentStepId: r[5], retryOf: r[6],
  }
}

/** The run's lineage alone (for a run whose result is known already). */
export function getRunLineage(conn: Connection, runId: string): RunLineage | undefined {
  const r = conn
    .statement('SELECT parent_run_id, parent_step_id, retry_of FROM runs WHERE id = ?')
    .raw(true)
    .get(runId) as [string | null, string | null, string | null] | undefined
  return r && { parentRunId: r[0], parentStepId: r[1], retryOf: r[2] }
}

/** The run's steps (id, status, output, attempts, error) in the order they were created. */
export function getStepResultRows(conn: Connection, runId: string): StepResultRow[] {
  const rows = conn
    .statement('SELECT step_id, status, output, attempts, error FROM steps WHERE run_id = ? ORDER BY id')
    .raw(true)
    .all(runId) as [string, string, string | null, number, string | null][]
  const out: StepResultRow[] = new Array(rows.length)
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!
    out[i] = { stepId: r[0], status: r[1], output: r[2] === null ? null : JSON.parse(r[2]), attempts: r[3], error: r[4] }
  }
  return out
}
