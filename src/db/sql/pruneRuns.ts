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

/** Deletes runs, their sub-workflow runs and retries' children, with their events; steps, attempts
 * and artifact rows go by foreign-key cascade. */
export function deleteRuns(conn: Connection, topLevel: readonly string[]): { paths: string[] } {
  if (topLevel.length === 0) return { paths: [] }
  const ids = (
    conn
      .statement(
        `WITH RECURSIVE family(id) AS (SELECT value FROM json_each(?)
           UNION SELECT runs.id FROM runs JOIN family ON runs.parent_run_id = family.id)
         SELECT id FROM family`,
      )
      .all(JSON.stringify(topLevel)) as { id: string }[]
  ).map((r) => r.id)
  const list = ids.map(() => '?').join(', ')
  const paths = (conn.statement(`SELECT path FROM artifacts WHERE run_id IN (${list})`).all(...ids) as { path: string }[]).map((r) => r.path)
  conn.statement(`DELETE FROM events WHERE run_id IN (${list})`).run(...ids)
  conn.statement(`DELETE FROM runs WHERE id IN (${list})`).run(...ids)
  return { paths }
}
