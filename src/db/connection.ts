// Opening a database: pragmas for a durable but fast embedded store, migrations applied on open,
// and a cache of prepared statements so every state transition is prepared once per connection.
import Database from 'better-sqlite3'
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3'
import { migrate } from 'drizzle-orm/better-sqlite3/migrator'
import { mkdirSync, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as schema from './schema.ts'
import { WalCheckpointer, type TruncateResult, type WalCheckpointerOptions } from './wal-checkpointer.ts'

export const MIGRATIONS_FOLDER = resolve(dirname(fileURLToPath(import.meta.url)), '../../drizzle')

export type Db = BetterSQLite3Database<typeof schema>

/**
 * What a committed change survives. `process` (WAL, synchronous=NORMAL): a crash of the process, not
 * of the machine: the last commits may be lost on power loss. `machine` (synchronous=FULL): the WAL
 * is synced at every commit, so a commit is on disk before anything that depends on it happens.
 */
export type Durability = 'process' | 'machine'
export const DURABILITY_MODES: readonly Durability[] = ['process', 'machine']

export interface ConnectionOptions {
  /** Default `process`. */
  durability?: Durability
  /** Milliseconds a writer waits on a locked database before SQLITE_BUSY. */
  busyTimeoutMs?: number
  readonly?: boolean
  /**
   * Checkpoint the WAL on a worker thread once the WAL file has reached `afterWalBytes` (default
   * 2 MiB; `false`: never, SQLite checkpoints inside commits). A database written to little never
   * starts the thread.
   */
  backgroundCheckpoints?: false | (WalCheckpointerOptions & { afterWalBytes?: number; checkEveryMs?: number })
}

/** When a WAL that was reused finds itself larger than this, it is truncated to it. */
const WAL_SIZE_LIMIT = 64 * 1024 * 1024

export class Connection {
  readonly sqlite: Database.Database
  readonly db: Db
  readonly path: string
  readonly durability: Durability
  private readonly statements = new Map<string, Database.Statement>()
  /** Counts every statement run through `db` or `statement()`; tests use it to prove the absence of N+1. */
  statementCount = 0
  /** WAL file size that starts background checkpoints (Infinity: never), looked at every `walCheckMs`. */
  private checkpointAfter: number
  private readonly walCheckMs: number
  private walCheckedAt = 0
  private readonly checkpointOptions: WalCheckpointerOptions | undefined
  /** Set once WAL checkpoints run on a worker thread. */
  checkpointer: WalCheckpointer | undefined

  constructor(path = ':memory:', options: ConnectionOptions = {}) {
    this.path = path
    this.durability = options.durability ?? 'process'
    if (!DURABILITY_MODES.includes(this.durability)) {
      throw new Error(`durability must be one of ${DURABILITY_MODES.map((d) => `"${d}"`).join(', ')}, not ${JSON.stringify(options.durability)}`)
    }
    let sqlite: Database.Database | undefined
    try {
      if (path !== ':memory:' && !path.startsWith('file:')) mkdirSync(dirname(resolve(path)), { recursive: true })
      sqlite = new Database(path, { readonly: options.readonly ?? false })
      sqlite.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`)
      // Pages freed by deletes (retention) can be given back to the filesystem in small steps
      // (reclaimSpace.ts). It only takes on a database without tables, so it comes before
      // journal_mode, which writes the first page; older databases are switched below.
      if (!options.readonly) sqlite.pragma('auto_vacuum = INCREMENTAL')
      if (path !== ':memory:') {
        sqlite.pragma('journal_mode = WAL')
        sqlite.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT}`)
      }
      sqlite.pragma(this.durability === 'machine' ? 'synchronous = FULL' : 'synchronous = NORMAL')
      sqlite.pragma('foreign_keys = ON')
      // SQLite opens a file it may not write read-only without a word, and every later change would
      // fail: find out now with a write that is rolled back.
      if (!options.readonly) {
        probeWritable(sqlite)
        migrateToIncrementalVacuum(sqlite)
      }
    } catch (error) {
      sqlite?.close()
      throw openError(path, error)
    }
    this.sqlite = sqlite
    const background = options.backgroundCheckpoints
    const onDisk = path !== ':memory:' && !path.startsWith('file:') && !options.readonly
    this.checkpointAfter = background === false || !onDisk ? Number.POSITIVE_INFINITY : background?.afterWalBytes ?? 2 * 1024 * 1024
    this.walCheckMs = (background === false ? undefined : background?.checkEveryMs) ?? 100
    this.checkpointOptions = background === false ? undefined : { busyTimeoutMs: options.busyTimeoutMs, ...background }
    this.db = drizzle(this.sqlite, {
      schema,
      logger: { logQuery: () => void this.statementCount++ },
    })
    if (!options.readonly) {
      try {
        migrate(this.db, { migrationsFolder: MIGRATIONS_FOLDER })
      } catch (error) {
        this.sqlite.close()
        throw openError(path, error)
      }
    }
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
    const result = this.sqlite.transaction(fn).immediate()
    if (this.checkpointAfter !== Number.POSITIVE_INFINITY && !this.checkpointer) this.lookAtWal()
    return result
  }

  /** Now and then a look at the WAL's size (one stat): a busy database moves its checkpoints off this thread. */
  private lookAtWal(): void {
    const now = Date.now()
    if (now - this.walCheckedAt < this.walCheckMs) return
    this.walCheckedAt = now
    try {
      if ((statSync(`${this.path}-wal`, { throwIfNoEntry: false })?.size ?? 0) >= this.checkpointAfter) this.startBackgroundCheckpoints()
    } catch {
      // The commit has happened: it must not look failed. Checkpoints stay inside commits.
      this.checkpointAfter = Number.POSITIVE_INFINITY
    }
  }

  /** From now on the WAL is checkpointed on a worker thread, not inside commits (see WalCheckpointer). */
  startBackgroundCheckpoints(): void {
    if (this.checkpointer || !this.sqlite.open || this.path === ':memory:') return
    this.checkpointer = new WalCheckpointer(this.sqlite, this.path, this.checkpointOptions)
  }

  /**
   * Copies the WAL back and truncates its file to zero bytes (after large deletes: SQLite otherwise
   * keeps a WAL file as large as the largest burst of writes). On the checkpoint worker when there
   * is one, so the copy never holds up the event loop; here otherwise.
   */
  async truncateWal(): Promise<TruncateResult> {
    if (this.path === ':memory:' || !this.sqlite.open) return { busy: false, frames: 0, copied: 0 }
    if (this.checkpointer) {
      try {
        return await this.checkpointer.truncate()
      } catch {
        // The worker is gone: commits checkpoint again, and so does this.
      }
    }
    const [r] = this.sqlite.pragma('wal_checkpoint(TRUNCATE)') as { busy: number; log: number; checkpointed: number }[]
    return { busy: r!.busy === 1, frames: r!.log, copied: r!.checkpointed }
  }

  close(): void {
    // The worker's connection closes first: the main one, last, makes the final checkpoint.
    this.checkpointer?.stop()
    if (this.sqlite.open) this.sqlite.close()
  }
}

/**
 * A database created before incremental auto-vacuum keeps every page it ever used: switching it
 * takes one VACUUM (a rewrite of the whole file, once, at open; it needs as much free disk again).
 */
function migrateToIncrementalVacuum(sqlite: Database.Database): void {
  if (sqlite.pragma('auto_vacuum', { simple: true }) === AUTO_VACUUM_INCREMENTAL) return
  sqlite.pragma('auto_vacuum = INCREMENTAL')
  sqlite.exec('VACUUM')
  // The rewrite went through the WAL: leave it empty, not as large as the database.
  if (sqlite.pragma('journal_mode', { simple: true }) === 'wal') sqlite.pragma('wal_checkpoint(TRUNCATE)')
}

const AUTO_VACUUM_INCREMENTAL = 2

function probeWritable(sqlite: Database.Database): void {
  const version = sqlite.pragma('user_version', { simple: true }) as number
  sqlite.exec('BEGIN IMMEDIATE')
  try {
    sqlite.pragma(`user_version = ${version}`)
  } finally {
    sqlite.exec('ROLLBACK')
  }
}

/** An error that names the database file (the SQLite message alone does not), keeping the SQLite code. */
function openError(path: string, error: unknown): Error {
  const cause = error as { message?: string; code?: string }
  const hint = /READONLY|CANTOPEN|PERM|EACCES|EROFS/.test(`${cause.code ?? ''} ${cause.message ?? ''}`)
    ? ' (check that the file and its directory exist and are writable by this user)'
    : ''
  const wrapped = new Error(`cannot open database ${path}: ${cause.message ?? String(error)}${hint}`, { cause: error })
  if (cause.code) (wrapped as Error & { code?: string }).code = cause.code
  return wrapped
}
