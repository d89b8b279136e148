import type { Connection } from '../connection.ts'
import { apiTokens } from '../schema.ts'

export interface NewApiToken {
  id: string
  name: string
  /** Hex SHA-256 of the token's secret (the secret itself is never stored). */
  hash: string
  scopes: string[]
  createdAt: number
}

export function insertApiToken(conn: Connection, token: NewApiToken): void {
  conn.db.insert(apiTokens).values(token).run()
}
