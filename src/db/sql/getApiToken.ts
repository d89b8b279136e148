import { eq } from 'drizzle-orm'
import type { Connection } from '../connection.ts'
import { apiTokens, type ApiTokenRow } from '../schema.ts'

export function getApiToken(conn: Connection, id: string): ApiTokenRow | undefined {
  return conn.db.select().from(apiTokens).where(eq(apiTokens.id, id)).get()
}
