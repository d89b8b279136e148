import type { Connection } from '../connection.ts'

/** Marks the token revoked; false when there is no such token or it was revoked already. */
export function revokeApiToken(conn: Connection, id: string, at: number): boolean {
  return conn.statement('UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(at, id).changes === 1
}
