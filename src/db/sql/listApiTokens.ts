import { asc, getTableColumns } from 'drizzle-orm'
import type { Connection } from '../connection.ts'
import { apiTokens, type ApiTokenRow } from '../schema.ts'

/** Every token, oldest first, without its hash. */
export function listApiTokens(conn: Connection): Omit<ApiTokenRow, 'hash'>[] {
  const { hash: _hash, ...columns } = getTableColumns(apiTokens)
  return conn.db.select(columns).from(apiTokens).orderBy(asc(apiTokens.createdAt), asc(apiTokens.id)).all()
}
