import type { Connection } from '../connection.ts'

/** Ids of finished top-level runs that ended before `before`, oldest first. */
export function findPrunableRuns(conn: Connection, before: number, limit: number): { id: string }[] {
  return conn
    .statement(
      `SELECT id FROM runs WHERE finished_at IS NOT NULL AND finished_at < ? AND parent_run_id IS NULL
         AND status IN ('SUCCEEDED', 'FAILED', 'CANCELLED', 'TIMED_OUT', 'ROLLED_BACK')
       ORDER BY finished_at LIMIT ?`,
    )
    .all(before, limit) as { id: string }[]
}

/** The runs, their sub-workflow runs and retries' children: the top-level ones first. */
export function runFamily(conn: Connection, topLevel: readonly string[]): string[] {
  if (topLevel.length === 0) return []
  return (
    conn
      .statement(
        `WITH RECURSIVE family(id) AS (SELECT value FROM json_each(?)
           UNION SELECT runs.id FROM runs JOIN family ON runs.parent_run_id = family.id)
         SELECT id FROM family`,
      )
      .all(JSON.stringify(topLevel)) as { id: string }[]
  ).map((r) => r.id)
}

/** Tables whose rows belong to a run (by `run_id`) and are deleted in chunks before the run itself. */
export type RunRowsTable = 'events' | 'step_attempts' | 'steps'

/**
 * Deletes at most `limit` rows of `table` that belong to the runs `ids` (a run can own a million
 * events: one DELETE of them all would hold the write lock and the event loop for seconds).
 * Returns how many went; 0 when none are left.
 */
export function deleteRunRows(conn: Connection, table: RunRowsTable, ids: readonly string[], limit: number): number {
  // json_each: a family can hold more runs than SQLite takes bound parameters.
  return conn
    .statement(
      `DELETE FROM ${table} WHERE rowid IN (
         SELECT rowid FROM ${table} WHERE run_id IN (SELECT value FROM json_each(?)) LIMIT ?)`,
    )
    .run(JSON.stringify(ids), limit).changes
}

/** Deletes at most `limit` artifact rows of the runs `ids`; returns the paths of their files. */
export function deleteArtifactRows(conn: Connection, ids: readonly string[], limit: number): { paths: string[] } {
  const rows = conn
    .statement(`SELECT id, path FROM artifacts WHERE run_id IN (SELECT value FROM json_each(?)) LIMIT ?`)
    .all(JSON.stringify(ids), limit) as { id: string; path: string }[]
  if (rows.length > 0) conn.statement(`DELETE FROM artifacts WHERE id IN (SELECT value FROM json_each(?))`).run(JSON.stringify(rows.map((r) => r.id)))
  return { paths: rows.map((r) => r.path) }
}

/**
 * One bounded step of pruning the runs `ids` (a family, see runFamily): at most `limit` of their
 * events, attempts, steps and artifact rows, children first, and the run rows once nothing else is
 * left. Run it in a transaction, again until `done`; runs that are only partly pruned (a crash, a
 * stop) are still found by findPrunableRuns and finished the next time.
 */
export function pruneRunsStep(conn: Connection, ids: readonly string[], limit: number): { rows: number; paths: string[]; done: boolean } {
  let rows = 0
  for (const table of ['events', 'step_attempts', 'steps'] as const) {
    rows += deleteRunRows(conn, table, ids, limit - rows)
    if (rows >= limit) return { rows, paths: [], done: false }
  }
  const { paths } = deleteArtifactRows(conn, ids, limit - rows)
  rows += paths.length
  if (rows >= limit) return { rows, paths, done: false }
  rows += deleteRuns(conn, ids)
  return { rows, paths, done: true }
}

/** Deletes the run rows themselves (whatever rows they still own go by foreign-key cascade). */
export function deleteRuns(conn: Connection, ids: readonly string[]): number {
  if (ids.length === 0) return 0
  return conn.statement(`DELETE FROM runs WHERE id IN (SELECT value FROM json_each(?))`).run(JSON.stringify(ids)).changes
}
