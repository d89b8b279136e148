import type { Connection } from '../connection.ts'

/** Ids of finished top-level runs that ended before `before`, oldest first. */
export function findPrunableRuns(conn: Connection, before: number, limit: number): { id: string }[] {
  return conn
    .statement(
      `SELECT id FROM runs WHERE finished_at IS NOT NULL AND finished_at < ?
         AND status IN ('SUCCEEDED', 'FAILED', 'CANCELLED', 'TIMED_OUT', 'ROLLED_BACK')
       ORDER BY finished_at LIMIT ?`,
    )
    .all(before, limit) as { id: string }[]
}

/** Deletes runs with their events; steps, attempts and artifact rows go by foreign-key cascade. */
export function deleteRuns(conn: Connection, ids: readonly string[]): { paths: string[] } {
  if (ids.length === 0) return { paths: [] }
  const list = ids.map(() => '?').join(', ')
  const paths = (conn.statement(`SELECT path FROM artifacts WHERE run_id IN (${list})`).all(...ids) as { path: string }[]).map((r) => r.path)
  conn.statement(`DELETE FROM events WHERE run_id IN (${list})`).run(...ids)
  conn.statement(`DELETE FROM runs WHERE id IN (${list})`).run(...ids)
  return { paths }
}
