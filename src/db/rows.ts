// Rows read and written without drizzle's query builder, on the paths that move many rows. Drizzle
// builds and compiles the SQL again on every call and maps each row column by column through path
// lookups and kind checks: for a page of 100 runs with their 1,000 steps that was most of the
// request. Here a statement is prepared once per connection (Connection.statement), a row read is
// one array mapped by position, and rows written go many to an INSERT.
import { getTableColumns, getTableName, type InferSelectModel, type Table } from 'drizzle-orm'
import { SQLiteTextJson } from 'drizzle-orm/sqlite-core'
import type { Connection } from './connection.ts'

export interface RowReader<T extends Table> {
  /** Runs `SELECT <every column> FROM <table> <rest>` (prepared once per connection) and maps its rows. */
  all(conn: Connection, rest: string, ...params: unknown[]): InferSelectModel<T>[]
  get(conn: Connection, rest: string, ...params: unknown[]): InferSelectModel<T> | undefined
}

export function rowReader<T extends Table>(table: T): RowReader<T> {
  const columns = Object.entries(getTableColumns(table)).map(([key, column]) => ({ key, name: column.name, json: column instanceof SQLiteTextJson }))
  const select = `SELECT ${columns.map((c) => `"${c.name}"`).join(', ')} FROM "${getTableName(table)}"`
  // One object literal per row (one hidden class for every row of the table), built from the columns.
  const map = new Function(
    'row',
    `return { ${columns.map((c, i) => `${JSON.stringify(c.key)}: ${c.json ? `typeof row[${i}] === 'string' ? JSON.parse(row[${i}]) : row[${i}]` : `row[${i}]`}`).join(', ')} }`,
  ) as (row: unknown[]) => InferSelectModel<T>
  return {
    all: (conn, rest, ...params) => (conn.statement(`${select} ${rest}`).raw(true).all(...params) as unknown[][]).map(map),
    get: (conn, rest, ...params) => {
      const row = conn.statement(`${select} ${rest}`).raw(true).get(...params) as unknown[] | undefined
      return row && map(row)
    },
  }
}

/**
 * `column IN (…ids)` as one statement text whatever the number of ids (bind `JSON.stringify(ids)`):
 * a batch of any size reuses one prepared statement, and SQLite still looks each id up in the index.
 */
export function inJson(column: string): string {
  return `${column} IN (SELECT value FROM json_each(?))`
}

/**
 * A multi-row INSERT writer: `head` is `INSERT INTO t (c1, …)` with `columns` columns, `tail` what
 * follows the VALUES (an ON CONFLICT clause); `fill` puts one row's values into `args` from `at`.
 * A statement per row costs more than the row (its setup, the call, AUTOINCREMENT's bookkeeping), so
 * rows go `chunk` to a statement, each size's text built once. Returns the first row's id: inside
 * the caller's write transaction nothing else inserts, and each row gets one more than the largest
 * id so far, so the rows of one call have consecutive ids in the order given.
 */
export function multiRowInsert<T, C = undefined>(
  head: string, columns: number, fill: (row: T, args: unknown[], at: number, context: C) => void, options: { chunk?: number; tail?: string } = {},
): (conn: Connection, rows: readonly T[], context: C) => number {
  const chunk = options.chunk ?? 50
  const tuple = `(${Array.from({ length: columns }, () => '?').join(', ')})`
  const sqlBySize: string[] = []
  const sql = (n: number) => (sqlBySize[n] ??= `${head} VALUES ${Array.from({ length: n }, () => tuple).join(', ')}${options.tail ? ` ${options.tail}` : ''}`)
  return (conn, rows, context) => {
    let first = 0
    for (let i = 0; i < rows.length; i += chunk) {
      const n = Math.min(chunk, rows.length - i)
      const args: unknown[] = new Array(n * columns)
      for (let k = 0; k < n; k++) fill(rows[i + k]!, args, k * columns, context)
      const r = conn.statement(sql(n)).run(args)
      if (r.changes !== n) throw new Error(`${head}: wrote ${r.changes} of ${n} rows`)
      if (i === 0) first = Number(r.lastInsertRowid) - n + 1
    }
    return first
  }
}
