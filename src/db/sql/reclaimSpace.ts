import type { Connection } from '../connection.ts'

/** Pages of the database file that deletes have freed and nothing uses. */
export function freePages(conn: Connection): number {
  return conn.sqlite.pragma('freelist_count', { simple: true }) as number
}

/**
 * Gives at most `pages` free pages back to the filesystem (incremental auto-vacuum, see
 * connection.ts): pages from the end of the file move into free slots and the file is cut. Bounded
 * so one step is a short transaction. Returns how many pages were freed.
 */
export function vacuumStep(conn: Connection, pages: number): number {
  const before = freePages(conn)
  conn.transaction(() => conn.sqlite.pragma(`incremental_vacuum(${Math.max(1, Math.floor(pages))})`))
  return before - freePages(conn)
}
