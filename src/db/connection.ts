// Opening a database: pragmas for a durable but fast embedded store, migrations applied on open,
// and a cache of prepared statements so every state transition is prepared once per connection.
import Database from 'better-sqlite3'
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3'
import { migrate } from 'drizzle-orm/better-sqlite3/migrator'
import { mkdirSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as schema from './schema.ts'

export const MIGRATIONS_FOLDER = resolve(dirname(fileURLToPath(import.meta.url)), '../../drizzle')

export type Db = BetterSQLite3Database<typeof schema>

export interface ConnectionOptions {
  /** Milliseconds a writer waits on a locked database before SQLITE_BUSY. */
  busyTimeoutMs?: number
  readonly?: boolean
}

export class Connection {
  readonly sqlite: Database.Database
  readonly db: Db
  readonly path: string
  private readonly statements = new Map<string, Database.Statement>()
  /** Counts every statement run through `db` or `statement()`; tests use it to prove the absence of N+1. */
  statementCount = 0

  constructor(path = ':memory:', options: ConnectionOptions = {}) {
    this.path = path
    if (path !== ':memory:' && !path.startsWith('file:')) mkdirSync(dirname(resolve(path)), { recursive: true })
    this.sqlite = new Database(path, { readonly: options.readonly ?? false })
    this.sqlite.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`)
    if (path !== ':memory:') this.sqlite.pragma('journal_mode = WAL')
    this.sqlite.pragma('synchronous = NORMAL')
    this.sqlite.pragma('foreign_keys = ON')
    this.db = drizzle(this.sqlite, {
      schema,
      logger: { logQuery: () => void this.statementCount++ },
    })
    if (!options.readonly) migrate(this.db, { migrationsFolder: MIGRATIONS_FOLDER })
  }

  /** A prepared statement, compiled once per connection. */
  statement(sql: string): Database.Statement {
    let stmt = this.statements.get(sql)
    if (!stmt) {
      stmt = this.sqlite.prepare(sql)
      this.statements.set(sql, stmt)
    }
    this.statementCount++
    return stmt
  }

  /** Runs `fn` in one transaction (BEGIN IMMEDIATE so writers never deadlock on upgrade). */
  transaction<T>(fn: () => T): T {
    return this.sqlite.transaction(fn).immediate()
  }

  close(): void {
    if (this.sqlite.open) this.sqlite.close()
  }
}
