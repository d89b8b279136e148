import type { Connection } from '../connection.ts'

/** Records when a token was last used. */
export function touchApiToken(conn: Connection, id: string, at: number): void {
  conn.statement('UPDATE api_tokens SET last_used_at = ? WHERE id = ?').run(at, id)
}
